"""A client that stops reading: its session's bounded outbound queue overflows and the server closes
it with 4008; nobody else is disturbed, and the client recovers everything with `sync`."""
import asyncio
import base64
import json
import os
import socket
import struct

import websockets

from conftest import Server
from test_websocket import recv, recv_until, run, sync_after


def stalled_websocket(server, token):
    """A raw WebSocket that upgrades and then reads nothing (tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /v1/ws?token={token} HTTP/1.1\r\nHost: {server.base}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def read_frames(s):
    """Every frame until the server's close frame: (text payloads, close code)."""
    s.settimeout(60)
    buf = b""
    texts = []

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("connection ended without a close frame")
            buf += chunk

    while True:
        need(2)
        opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
        header = 2
        if length == 126:
            need(4)
            length, header = struct.unpack(">H", buf[2:4])[0], 4
        elif length == 127:
            need(10)
            length, header = struct.unpack(">Q", buf[2:10])[0], 10
        need(header + length)
        payload, buf = buf[header:header + length], buf[header + length:]
        if opcode == 1:
            texts.append(json.loads(payload))
        elif opcode == 8:
            return texts, struct.unpack(">H", payload[:2])[0]


def test_a_stalled_reader_is_closed_with_4008_and_recovers_by_sync(datadir):
    server = Server(datadir + "/data", "--session-rate-limit", "100000:100000", "--user-send-rate-limit", "off")
    try:
        ann, bob = server.user("ann"), server.user("bob")
        status, conv = server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, ann["token"])
        assert status == 201
        stalled = stalled_websocket(server, bob["token"])
        count = 3000
        body = "x" * 4000  # 12 MB in all: more than the kernel buffers hold

        async def go():
            async with websockets.connect(server.ws_url(ann["token"])) as a, \
                    websockets.connect(server.ws_url(bob["token"])) as other:
                await recv(a)
                hello = await recv(other)
                async def send_all():
                    for i in range(count):
                        await a.send(json.dumps({"type": "send", "clientMsgId": f"m{i}", "conversationId": conv["conversationId"], "body": body}))

                async def read_acks():
                    return [await recv_until(a, "ack", timeout=30) for _ in range(count)]

                async def read_live():
                    return [await recv_until(other, "message", timeout=30) for _ in range(count)]

                _, acks, live = await asyncio.gather(send_all(), read_acks(), read_live())
                # Each ack names its clientMsgId; seqs follow the send order.
                assert {x["clientMsgId"]: x["seq"] for x in acks} == {f"m{i}": i + 1 for i in range(count)}
                # Bob's other session reads as it goes: undisturbed, everything, in order.
                assert [m["seq"] for m in live] == list(range(1, count + 1))
                return hello["inboxSeq"]

        start = run(go())
        texts, code = read_frames(stalled)
        assert code == 4008
        held = [t for t in texts if t["type"] == "message"]
        assert len(held) < count
        assert [m["seq"] for m in held] == list(range(1, len(held) + 1))
        last = max([start] + [m["inboxSeq"] for m in held])

        async def recover():
            async with websockets.connect(server.ws_url(bob["token"])) as b:
                await recv(b)
                return await sync_after(b, last)

        rest = run(recover())
        assert [m["seq"] for m in held + rest] == list(range(1, count + 1))
    finally:
        server.stop()


def masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


def test_a_client_that_keeps_sending_still_gets_the_servers_close_frame(datadir):
    """RFC 6455 section 7: after 20 bad frames the server closes (1008). A client that is still
    sending must get the close frame, not a reset (closing with unread input makes the kernel send
    RST, which destroys the close frame still unread on the client's side). Ten runs."""
    import threading
    server = Server(datadir + "/data")
    try:
        ann = server.user("ann")
        for run_no in range(10):
            s = stalled_websocket(server, ann["token"])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
            stop = threading.Event()

            def blast():
                frame = masked_text(b"not json")
                while not stop.is_set():
                    try:
                        s.sendall(frame * 50)
                    except OSError:
                        return
            sender = threading.Thread(target=blast)
            sender.start()
            try:
                _, code = read_frames(s)
            except (ConnectionResetError, EOFError) as e:
                raise AssertionError(f"run {run_no}: no close frame ({e!r})")
            finally:
                stop.set()
                sender.join()
                s.close()
            assert code == 1008, (run_no, code)
    finally:
        server.stop()
