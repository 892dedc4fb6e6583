"""PROTOCOL.md section 6, "Connections before a session", against the real binary over raw sockets:
a connection that dribbles a request head is closed at --header-timeout, an idle keep-alive
connection at --idle-timeout, a head over its bounds gets 431, and a WebSocket lives on past both."""
import asyncio
import json
import socket
import time

import websockets

from conftest import Server


def connect(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return s


def closed_within(s, seconds, dribble=None):
    """Seconds until the server closes `s` (recv returns b''), sending `dribble` bytes every 0.2 s;
    None if it is still open after `seconds`."""
    start = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            data = s.recv(4096)
            if data == b"":
                return time.monotonic() - start
        except socket.timeout:
            pass
        except ConnectionResetError:
            return time.monotonic() - start
        if dribble:
            try:
                s.sendall(dribble)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start
    return None


def read_response(s):
    s.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += s.recv(4096)
    return int(head.split(b" ")[1]), rest


def test_slow_heads_idle_connections_and_big_heads_are_cut_off(datadir):
    server = Server(datadir + "/data", "--header-timeout", "1s", "--idle-timeout", "2s")
    try:
        # A head dribbled a byte at a time is never complete: closed at the header timeout.
        s = connect(server)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        took = closed_within(s, 6, dribble=b"X")
        assert took is not None and took < 3, f"still open after {took}"
        s.close()

        # A head that promises a body which never comes: the body has the same allowance.
        s = connect(server)
        s.sendall(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
        took = closed_within(s, 6)
        assert took is not None and took < 3, f"still open after {took}"
        s.close()

        # A connection that sends nothing is closed too.
        s = connect(server)
        took = closed_within(s, 6)
        assert took is not None and took < 3
        s.close()

        # A keep-alive connection answers, then is closed once idle for the idle timeout, not before
        # the header timeout has long passed.
        s = connect(server)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 200
        took = closed_within(s, 8)
        assert took is not None and 1.5 < took < 4, f"idle close after {took}"
        s.close()

        # Heads over their bounds: 101 headers, or 20 KiB in one.
        for extra in ["".join(f"X-H{i}: v\r\n" for i in range(101)), "X-Big: " + "a" * 20_000 + "\r\n"]:
            s = connect(server)
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
            status, body = read_response(s)
            assert status == 431, (status, body)
            s.close()
        # A head within them is served.
        s = connect(server)
        s.sendall(("GET /healthz HTTP/1.1\r\nHost: x\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(90)) + "\r\n").encode())
        assert read_response(s)[0] == 200
        s.close()

        # A WebSocket is not an HTTP connection any more: it outlives both timeouts.
        ann = server.user("ann")

        async def session():
            async with websockets.connect(server.ws_url(ann["token"])) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
                await asyncio.sleep(3)  # past the header and the idle timeout: what is asserted is that nothing happens
                await ws.send(json.dumps({"type": "ping"}))
                return json.loads(await asyncio.wait_for(ws.recv(), 10))["type"]
        assert asyncio.run(session()) == "pong"
    finally:
        server.stop()
