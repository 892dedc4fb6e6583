"""PROTOCOL.md section 3 against the real binary, with the `websockets` client from PyPI."""
import asyncio
import json
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import Server


async def recv(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, type_, timeout=10):
    while True:
        frame = await recv(ws, timeout)
        if frame["type"] == type_:
            return frame


def run(coro):
    return asyncio.run(coro)


async def sync_after(ws, after):
    """Sends `sync` and returns the frames before `synced`."""
    await ws.send(json.dumps({"type": "sync", "after": after}))
    got = []
    while True:
        f = await recv(ws)
        if f["type"] == "synced":
            return got
        got.append(f)


def test_hello_send_ack_and_live_message(server):
    ann, bob = server.user("ann"), server.user("bob")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a, \
                websockets.connect(server.ws_url(), additional_headers={"Authorization": f"Bearer {bob['token']}"}) as b:
            ha, hb = await recv(a), await recv(b)
            assert ha["type"] == "hello" and ha["userId"] == ann["id"] and ha["inboxSeq"] == 0 and ha["heartbeatMs"] > 0
            assert hb["userId"] == bob["id"] and ha["sessionId"] != hb["sessionId"]
            await a.send(json.dumps({"type": "send", "clientMsgId": "c1", "to": bob["id"], "body": "hi bob"}))
            ack = await recv(a)
            assert ack["type"] == "ack" and ack["clientMsgId"] == "c1" and ack["seq"] == 1 and ack["inboxSeq"] == 1
            msg = await recv(b)
            assert msg["type"] == "message" and msg["body"] == "hi bob" and msg["from"] == ann["id"]
            assert msg["seq"] == 1 and msg["inboxSeq"] == 1 and msg["conversationId"] == ack["conversationId"]
            assert msg["messageId"] == ack["messageId"] and msg["clientMsgId"] == "c1"
    run(go())


def test_other_sessions_of_the_sender_get_the_message_the_sending_one_gets_the_ack(server):
    ann, bob = server.user("ann"), server.user("bob")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as phone, websockets.connect(server.ws_url(ann["token"])) as laptop:
            await recv(phone), await recv(laptop)
            await phone.send(json.dumps({"type": "send", "clientMsgId": "m", "to": bob["id"], "body": "from phone"}))
            assert (await recv(phone))["type"] == "ack"
            copy = await recv(laptop)
            assert copy["type"] == "message" and copy["body"] == "from phone" and copy["inboxSeq"] == 1
            await phone.send(json.dumps({"type": "ping"}))
            assert (await recv(phone))["type"] == "pong", "the sending session got no copy of its own message"
    run(go())


def test_no_duplicates_and_order_across_reconnects(server):
    ann, bob = server.user("ann"), server.user("bob")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            seqs = []
            for i in range(10):
                await a.send(json.dumps({"type": "send", "clientMsgId": f"m{i}", "to": bob["id"], "body": f"n{i}"}))
                seqs.append((await recv_until(a, "ack"))["seq"])
            assert seqs == list(range(1, 11))
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            await a.send(json.dumps({"type": "send", "clientMsgId": "m3", "to": bob["id"], "body": "retry"}))
            ack = await recv_until(a, "ack")
            assert ack["seq"] == 4 and ack["inboxSeq"] == 4, "same clientMsgId, same seq and inbox entry"
    run(go())
    status, page = server.http("GET", "/v1/conversations", token=bob["token"])
    conv = page["conversations"][0]
    assert conv["lastSeq"] == 10
    status, history = server.http("GET", f"/v1/conversations/{conv['conversationId']}/messages", token=bob["token"])
    assert [m["body"] for m in history["messages"]] == [f"n{i}" for i in range(10)]


def test_offline_member_gets_everything_by_sync_exactly_once(server):
    ann, bob = server.user("ann"), server.user("bob")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            for i in range(5):
                await a.send(json.dumps({"type": "send", "clientMsgId": f"m{i}", "to": bob["id"], "body": f"n{i}"}))
                await recv_until(a, "ack")
        async with websockets.connect(server.ws_url(bob["token"])) as b:
            hello = await recv(b)
            assert hello["inboxSeq"] == 5
            await b.send(json.dumps({"type": "sync", "after": 2}))
            got = []
            while True:
                f = await recv(b)
                if f["type"] == "synced":
                    assert f["inboxSeq"] == 5
                    break
                got.append(f)
            assert [f["inboxSeq"] for f in got] == [3, 4, 5] and [f["body"] for f in got] == ["n2", "n3", "n4"]
    run(go())


def test_error_codes_and_bad_frame_limit(server):
    ann, bob, cid = server.user("ann"), server.user("bob"), server.user("cid")
    status, conv = server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])

    async def go():
        async with websockets.connect(server.ws_url(cid["token"])) as c:
            await recv(c)
            cases = [
                ({"type": "send", "clientMsgId": "x", "conversationId": conv["conversationId"], "body": "hi"}, "not_member"),
                ({"type": "send", "clientMsgId": "x", "conversationId": "c_nope", "body": "hi"}, "unknown_conversation"),
                ({"type": "send", "clientMsgId": "x", "to": "u_nobody", "body": "hi"}, "unknown_user"),
                ({"type": "send", "clientMsgId": "x", "to": ann["id"], "body": ""}, "empty_body"),
                ({"type": "send", "clientMsgId": "x", "to": ann["id"], "body": "a" * 4097}, "body_too_large"),
            ]
            for frame, code in cases:
                await c.send(json.dumps(frame))
                err = await recv(c)
                assert err["type"] == "error" and err["code"] == code and err["ref"] == "x", (frame, err)
            for bad, words in [("nope", "JSON"), ("{}", "type"), ('{"type":"dance"}', "dance"),
                               ('{"type":"send","to":"u"}', "clientMsgId"), ('{"type":"sync","after":"x"}', "after")]:
                await c.send(bad)
                err = await recv(c)
                assert err["code"] == "bad_frame" and words in err["message"], (bad, err)
            await c.send(json.dumps({"type": "ping"}))
            assert (await recv(c))["type"] == "pong", "a valid frame resets the count"
            for _ in range(19):
                await c.send("{")
                assert (await recv(c))["code"] == "bad_frame"
            await c.send(json.dumps({"type": "ping"}))
            await recv(c)
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(21):
                    await c.send("{")
                    await recv(c)
            assert closed.value.rcvd.code == 1008
    run(go())


def test_oversized_frame_closes_with_1009(server):
    ann = server.user("ann")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"]), max_size=None) as a:
            await recv(a)
            with pytest.raises(ConnectionClosed) as closed:
                await a.send("x" * 70_000)
                await recv(a)
            assert closed.value.rcvd.code == 1009
        # Other clients are not disturbed.
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            assert (await recv(a))["type"] == "hello"
    run(go())


def test_oversized_fragmented_message_closes_with_1009(server):
    ann = server.user("ann")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            with pytest.raises(ConnectionClosed) as closed:
                await a.send(["x" * 40_000, "y" * 40_000])  # two fragments, 80,000 bytes in all
                await recv(a)
            assert closed.value.rcvd.code == 1009
    run(go())


class RawClient:
    """A WebSocket client over a plain socket, for frames `websockets` will not send."""

    def __init__(self, server, token):
        import base64, os, socket
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /v1/ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, opcode, payload, fin=True, mask=True):
        import struct
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        head = bytes([b0, (0x80 if mask else 0) | (n if n < 126 else 126)]) + (struct.pack("!H", n) if n >= 126 else b"")
        key = b"\x11\x22\x33\x44"
        body = bytes(c ^ key[i % 4] for i, c in enumerate(payload)) if mask else payload
        self.sock.sendall(head + (key if mask else b"") + body)

    def frame(self):
        """The next server frame as (opcode, payload); None once the server closed the socket."""
        while True:
            if len(self.buf) >= 2:
                n, at = self.buf[1] & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, at = int.from_bytes(self.buf[2:4], "big"), 4
                if n != 126 and len(self.buf) >= at + n:
                    op, payload, self.buf = self.buf[0] & 0x0F, self.buf[at:at + n], self.buf[at + n:]
                    return op, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def json(self):
        while True:
            op, payload = self.frame()
            if op == 0x1:
                return json.loads(payload)


def test_fragments_with_a_ping_between_make_one_message(server):
    ann = server.user("ann")
    c = RawClient(server, ann["token"])
    assert c.json()["type"] == "hello"
    c.send(0x1, b'{"type":', fin=False)
    c.send(0x9, b"are you there")  # a control frame between fragments (RFC 6455 5.4)
    c.send(0x0, b'"pi', fin=False)
    c.send(0x0, b'ng"}')
    assert c.frame() == (0xA, b"are you there")
    assert c.json()["type"] == "pong"
    c.send(0x8, (1000).to_bytes(2, "big"))
    assert c.frame() == (0x8, (1000).to_bytes(2, "big"))


@pytest.mark.parametrize("frames", [
    [(0x1, b'{"type":"ping"}', True, False)],           # not masked
    [(0x3, b"", True, True)],                           # reserved opcode
    [(0x0, b"x", True, True)],                          # continuation with no message
    [(0x1, b"{", False, True), (0x1, b"}", True, True)],  # a new message inside a fragmented one
    [(0x9, b"p", False, True)],                         # a fragmented control frame
])
def test_broken_framing_closes_with_1002_and_others_carry_on(server, frames):
    ann, bob = server.user("ann"), server.user("bob")
    other = RawClient(server, bob["token"])
    assert other.json()["type"] == "hello"
    c = RawClient(server, ann["token"])
    assert c.json()["type"] == "hello"
    for opcode, payload, fin, mask in frames:
        c.send(opcode, payload, fin=fin, mask=mask)
    op, payload = c.frame()
    assert op == 0x8 and int.from_bytes(payload[:2], "big") == 1002, payload
    assert c.frame() is None
    other.send(0x1, b'{"type":"ping"}')
    assert other.json()["type"] == "pong"


def test_missing_or_bad_token_is_401_without_upgrade(server):
    async def go():
        for url in (server.ws_url(), server.ws_url("forged")):
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(url):
                    pass
            assert refused.value.response.status_code == 401
    run(go())


def test_revoked_token_closes_its_sessions_with_4001(server):
    ann = server.user("ann")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            status, _ = await asyncio.to_thread(server.http, "DELETE", "/v1/sessions/current", None, ann["token"])
            assert status == 204
            with pytest.raises(ConnectionClosed) as closed:
                await recv(a)
            assert closed.value.rcvd.code == 4001
    run(go())


def test_session_rate_limit(datadir):
    server = Server(datadir + "/data", "--session-rate-limit", "1:5")
    try:
        ann = server.user("ann")

        async def go():
            async with websockets.connect(server.ws_url(ann["token"])) as a:
                await recv(a)
                for _ in range(5):
                    await a.send(json.dumps({"type": "ping"}))
                    assert (await recv(a))["type"] == "pong"
                await a.send(json.dumps({"type": "ping"}))
                err = await recv(a)
                assert err["code"] == "rate_limited" and err["retryAfterMs"] > 0 and "ref" not in err
                # A refused send names its clientMsgId, so the client knows what to retry.
                await a.send(json.dumps({"type": "send", "clientMsgId": "late-1", "to": ann["id"], "body": "x"}))
                err = await recv(a)
                assert err["code"] == "rate_limited" and err["ref"] == "late-1"
        run(go())
    finally:
        server.stop()


def test_silent_session_is_closed_with_1001(datadir):
    server = Server(datadir + "/data", "--heartbeat-ms", "300")
    try:
        ann = server.user("ann")

        async def go():
            # The client library's own pings would count as frames: turn them off.
            async with websockets.connect(server.ws_url(ann["token"]), ping_interval=None) as a:
                assert (await recv(a))["heartbeatMs"] == 300
                with pytest.raises(ConnectionClosed) as closed:
                    await recv(a, timeout=5)
                assert closed.value.rcvd.code == 1001
        run(go())
    finally:
        server.stop()


def test_acked_messages_survive_kill_9(datadir):
    server = Server(datadir + "/data")
    ann, bob = server.user("ann"), server.user("bob")

    async def send_all():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            acked = []
            for i in range(30):
                await a.send(json.dumps({"type": "send", "clientMsgId": f"k{i}", "to": bob["id"], "body": f"b{i}"}))
                acked.append((await recv_until(a, "ack"))["seq"])
            return acked
    acked = run(send_all())
    server.kill()
    server = Server(datadir + "/data")
    try:
        status, login = server.http("POST", "/v1/sessions", {"username": "bob", "password": "password1"})
        token = login["token"]

        async def sync_all():
            async with websockets.connect(server.ws_url(token)) as b:
                hello = await recv(b)
                return hello, await sync_after(b, 0)
        hello, got = run(sync_all())
        assert hello["inboxSeq"] == 30
        assert [f["seq"] for f in got] == acked == list(range(1, 31))
        assert [f["inboxSeq"] for f in got] == list(range(1, 31))
        assert [f["body"] for f in got] == [f"b{i}" for i in range(30)]
    finally:
        server.stop()


def test_typing_reaches_other_online_members_only(server):
    ann, bob, cid = server.user("ann"), server.user("bob"), server.user("cid")
    status, conv = server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a, websockets.connect(server.ws_url(bob["token"])) as b, \
                websockets.connect(server.ws_url(cid["token"])) as c:
            await recv(a), await recv(b), await recv(c)
            await a.send(json.dumps({"type": "typing", "conversationId": conv["conversationId"]}))
            t = await recv(b)
            assert t == {"type": "typing", "conversationId": conv["conversationId"], "userId": ann["id"]}
            await c.send(json.dumps({"type": "typing", "conversationId": conv["conversationId"]}))
            assert (await recv(c))["code"] == "not_member"
            await a.send(json.dumps({"type": "ping"}))
            assert (await recv(a))["type"] == "pong", "the typist gets no echo"
    run(go())


def test_presence_watch_and_http(server):
    ann, bob = server.user("ann"), server.user("bob")
    # Presence is visible to those who share a conversation (test_presence_visibility.py).
    assert server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])[0] == 201

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            await a.send(json.dumps({"type": "watch", "userIds": [bob["id"]]}))
            p = await recv(a)
            assert p["type"] == "presence" and p["userId"] == bob["id"] and p["status"] == "offline"
            async with websockets.connect(server.ws_url(bob["token"])) as b:
                await recv(b)
                p = await recv(a)
                assert p["status"] == "online" and p["userId"] == bob["id"]
                status, body = await asyncio.to_thread(server.http, "GET", f"/v1/presence?userIds={bob['id']},{ann['id']}", None, ann["token"])
                assert status == 200 and [x["status"] for x in body["presence"]] == ["online", "online"]
            p = await recv(a)
            assert p["status"] == "offline" and p["lastSeen"] > 0, "a clean close makes the user offline at once"
    run(go())


def test_silent_session_goes_offline_for_watchers(datadir):
    server = Server(datadir + "/data", "--heartbeat-ms", "300")
    try:
        ann, bob = server.user("ann"), server.user("bob")
        assert server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])[0] == 201

        async def go():
            async with websockets.connect(server.ws_url(ann["token"])) as a, \
                    websockets.connect(server.ws_url(bob["token"]), ping_interval=None) as b:
                await recv(a), await recv(b)
                await a.send(json.dumps({"type": "watch", "userIds": [bob["id"]]}))
                assert (await recv(a))["status"] == "online"
                # ann keeps sending pings; bob stays silent and is cut off after 2 x heartbeatMs.
                while True:
                    await a.send(json.dumps({"type": "ping"}))
                    f = await recv(a, timeout=5)
                    if f["type"] == "presence":
                        assert f["status"] == "offline" and f["userId"] == bob["id"]
                        break
                    await asyncio.sleep(0.1)
        run(go())
    finally:
        server.stop()


def test_read_receipts_reach_the_other_members_and_unread_drops(server):
    ann, bob = server.user("ann"), server.user("bob")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a, websockets.connect(server.ws_url(bob["token"])) as b:
            await recv(a), await recv(b)
            for i in range(3):
                await a.send(json.dumps({"type": "send", "clientMsgId": f"r{i}", "to": bob["id"], "body": f"x{i}"}))
                ack = await recv_until(a, "ack")
            conv = ack["conversationId"]
            status, before = await asyncio.to_thread(server.http, "GET", f"/v1/conversations/{conv}", None, bob["token"])
            assert before["unread"] == 3
            for _ in range(3):
                await recv_until(b, "message")
            await b.send(json.dumps({"type": "read", "conversationId": conv, "seq": 2}))
            r = await recv_until(a, "receipt")
            assert r["kind"] == "read" and r["userId"] == bob["id"] and r["seq"] == 2 and r["conversationId"] == conv
            assert r["inboxSeq"] == 4, "a receipt is an entry in the receiver's inbox"
            status, after = await asyncio.to_thread(server.http, "GET", f"/v1/conversations/{conv}", None, bob["token"])
            assert after["unread"] == 1
        # The receipt is also there for a later sync.
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            await a.send(json.dumps({"type": "sync", "after": 3}))
            r = await recv(a)
            assert r["type"] == "receipt" and r["seq"] == 2
            assert (await recv(a))["type"] == "synced"
    run(go())


def test_received_gives_one_delivered_receipt_per_conversation_and_sender(server):
    ann, bob = server.user("ann"), server.user("bob")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a, websockets.connect(server.ws_url(bob["token"])) as b:
            await recv(a), await recv(b)
            for i in range(3):
                await a.send(json.dumps({"type": "send", "clientMsgId": f"d{i}", "to": bob["id"], "body": f"x{i}"}))
                await recv_until(a, "ack")
            last = None
            for _ in range(3):
                last = await recv_until(b, "message")
            await b.send(json.dumps({"type": "received", "upTo": last["inboxSeq"]}))
            r = await recv_until(a, "receipt")
            assert r["kind"] == "delivered" and r["userId"] == bob["id"] and r["seq"] == 3
            await b.send(json.dumps({"type": "received", "upTo": last["inboxSeq"]}))
            await a.send(json.dumps({"type": "ping"}))
            assert (await recv(a))["type"] == "pong", "the same holding is reported once"
    run(go())


def test_cluster_view_of_a_single_node_needs_no_token(server):
    status, view = server.http("GET", "/v1/cluster")
    assert status == 200
    assert view["self"] == "node1"
    assert view["nodes"] == [{"nodeId": "node1", "address": server.base, "status": "alive"}]


def test_fsync_never_on_one_event_loop_acks_delivers_and_a_clean_stop_keeps_everything(datadir):
    # `--fsync never` commits sends on the event loop that read them (CommitDeferral): pipelined sends
    # share commits there; acks, live copies and the log after a clean stop must all be whole.
    server = Server(datadir + "/data", "--fsync", "never", "--event-loops", "1", "--user-send-rate-limit", "off")
    ann, bob = server.user("ann"), server.user("bob")
    n = 200
    # One session's sends to a conversation take seqs in the order sent (ENGINE.md rule 5).
    status, conv = server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])
    assert status in (200, 201)
    cid = conv["conversationId"]

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a, websockets.connect(server.ws_url(bob["token"])) as b:
            await recv(a)
            await recv(b)
            for i in range(n):
                await a.send(json.dumps({"type": "send", "clientMsgId": f"p{i}", "conversationId": cid, "body": f"v{i}"}))
            acks = [await recv_until(a, "ack") for _ in range(n)]
            live = [await recv_until(b, "message") for _ in range(n)]
            return acks, live
    try:
        acks, live = run(go())
        assert [f["clientMsgId"] for f in acks] == [f"p{i}" for i in range(n)]
        assert [f["seq"] for f in acks] == list(range(1, n + 1))
        assert [f["body"] for f in live] == [f"v{i}" for i in range(n)]
    finally:
        assert server.stop() == 0
    server = Server(datadir + "/data")
    try:
        status, login = server.http("POST", "/v1/sessions", {"username": "bob", "password": "password1"})

        async def sync_all():
            async with websockets.connect(server.ws_url(login["token"])) as b:
                await recv(b)
                return await sync_after(b, 0)
        got = run(sync_all())
        assert [f["seq"] for f in got] == list(range(1, n + 1))
        assert [f["body"] for f in got] == [f"v{i}" for i in range(n)]
    finally:
        server.stop()


def test_pipelined_sends_by_user_keep_their_order(server):
    # The first send to a user looks the pair's conversation up (an actor call); sends after it,
    # by user or by conversationId, wait behind it and take seqs in the order they were sent.
    ann, bob = server.user("ann"), server.user("bob")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            for i in range(40):
                await a.send(json.dumps({"type": "send", "clientMsgId": f"q{i}", "to": bob["id"], "body": f"w{i}"}))
            acks = [await recv_until(a, "ack") for _ in range(40)]
            cid = acks[0]["conversationId"]
            for i in range(40, 50):
                target = {"to": bob["id"]} if i % 2 else {"conversationId": cid}
                await a.send(json.dumps({"type": "send", "clientMsgId": f"q{i}", "body": f"w{i}", **target}))
            return acks + [await recv_until(a, "ack") for _ in range(10)]
    acks = run(go())
    assert [f["clientMsgId"] for f in acks] == [f"q{i}" for i in range(50)]
    assert [f["seq"] for f in acks] == list(range(1, 51))


def test_a_silent_session_is_closed_within_twice_the_heartbeat(datadir):
    """PROTOCOL.md section 6: within 2 x heartbeatMs, never later (1001)."""
    server = Server(datadir + "/data", "--heartbeat-ms", "1000")
    try:
        bob = server.user("bob")

        async def go():
            took = []
            for _ in range(3):
                async with websockets.connect(server.ws_url(bob["token"]), ping_interval=None) as b:
                    await recv(b)
                    start = time.monotonic()
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(b.recv(), 5)
                    took.append(time.monotonic() - start)
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            return took
        took = run(go())
        assert all(1.4 <= t <= 2.0 for t in took), took
    finally:
        server.stop()


def test_a_stopping_server_closes_sessions_with_1001(datadir):
    server = Server(datadir + "/data")
    ann = server.user("ann")

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a:
            await recv(a)
            start = time.monotonic()
            await asyncio.to_thread(server.proc.send_signal, __import__("signal").SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(a.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
            return time.monotonic() - start
    assert run(go()) < 5
    assert server.stop() == 0
