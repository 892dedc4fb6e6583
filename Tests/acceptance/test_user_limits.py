"""PROTOCOL.md section 6, "Per-user limits", against the real binary: one send bucket per user,
shared by its WebSocket sessions and HTTP sends (on every node of a cluster: test_cluster.py);
a cap on WebSocket sessions per user (429); pings count against the session's bucket."""
import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets

from conftest import Server
from test_websocket import recv, recv_until


def http_send(server, token, conversation, client_msg_id):
    req = urllib.request.Request(f"http://{server.base}/v1/conversations/{conversation}/messages", method="POST",
                                 data=json.dumps({"clientMsgId": client_msg_id, "body": "hi"}).encode())
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def test_one_send_bucket_per_user_shared_by_sessions_and_http(datadir):
    server = Server(datadir + "/data", "--user-send-rate-limit", "0.2:5", "--session-rate-limit", "1000:3000")
    try:
        ann, bob = server.user("ann"), server.user("bob")
        status, conv = server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])
        cid = conv["conversationId"]

        async def go():
            async with websockets.connect(server.ws_url(ann["token"])) as a, websockets.connect(server.ws_url(ann["token"])) as b:
                await recv(a), await recv(b)
                for i in range(2):
                    await a.send(json.dumps({"type": "send", "clientMsgId": f"a{i}", "conversationId": cid, "body": "x"}))
                    assert (await recv_until(a, "ack"))["clientMsgId"] == f"a{i}"
                await b.send(json.dumps({"type": "send", "clientMsgId": "b0", "conversationId": cid, "body": "x"}))
                assert (await recv_until(b, "ack"))["clientMsgId"] == "b0"
                for i in range(2):
                    assert (await asyncio.to_thread(http_send, server, ann["token"], cid, f"h{i}"))[0] == 201
                # Five sends in all: the bucket is empty, for every session and for HTTP.
                await b.send(json.dumps({"type": "send", "clientMsgId": "b1", "conversationId": cid, "body": "x"}))
                refused = await recv_until(b, "error")
                assert refused["code"] == "rate_limited" and refused["ref"] == "b1" and refused["retryAfterMs"] > 0, refused
                status, headers = await asyncio.to_thread(http_send, server, ann["token"], cid, "h2")
                assert status == 429 and int(headers["Retry-After"]) >= 1
                # Another user has a bucket of its own.
                assert (await asyncio.to_thread(http_send, server, bob["token"], cid, "bob0"))[0] == 201
        asyncio.run(go())
    finally:
        server.stop()


def test_a_user_holds_at_most_max_sessions_per_user(datadir):
    server = Server(datadir + "/data", "--max-sessions-per-user", "2")
    try:
        ann, bob = server.user("ann"), server.user("bob")

        async def go():
            a1 = await websockets.connect(server.ws_url(ann["token"]))
            a2 = await websockets.connect(server.ws_url(ann["token"]))
            await recv(a1), await recv(a2)
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(server.ws_url(ann["token"]))
            assert refused.value.response.status_code == 429
            async with websockets.connect(server.ws_url(bob["token"])) as b:  # others are not affected
                assert (await recv(b))["type"] == "hello"
            await a1.close()
            # Once the server has seen the close, a new session fits again.
            deadline = time.monotonic() + 10
            while True:
                try:
                    a3 = await websockets.connect(server.ws_url(ann["token"]))
                    break
                except websockets.InvalidStatus:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            assert (await recv(a3))["type"] == "hello"
            await a2.close()
            await a3.close()
        asyncio.run(go())
    finally:
        server.stop()


def test_pings_count_against_the_sessions_bucket(datadir):
    server = Server(datadir + "/data", "--session-rate-limit", "0.5:3")
    try:
        ann = server.user("ann")

        async def go():
            async with websockets.connect(server.ws_url(ann["token"]), ping_interval=None) as a:
                await recv(a)
                waiters = [await a.ping(bytes([i])) for i in range(6)]
                done, pending = await asyncio.wait(waiters, timeout=2)
                limited = await recv_until(a, "error")
                assert limited["code"] == "rate_limited", limited
                return len(done)
        answered = asyncio.run(go())
        assert answered == 3, answered
    finally:
        server.stop()


def test_a_session_watches_at_most_1000_users_over_all_its_watch_frames(server):
    ann = server.user("ann")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            await a.send(json.dumps({"type": "watch", "userIds": [f"u_{i:013d}" for i in range(600)]}))
            await a.send(json.dumps({"type": "watch", "userIds": [f"u_{i:013d}" for i in range(300, 1000)]}))
            await a.send(json.dumps({"type": "watch", "userIds": ["u_0000000001000"]}))
            refused = await recv_until(a, "error", timeout=20)
            assert refused["code"] == "bad_frame" and "1000" in refused["message"], refused
    asyncio.run(go())
