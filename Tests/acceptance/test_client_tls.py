"""PROTOCOL.md section 6, "Client TLS": with --tls-cert and --tls-key the --http listener speaks
HTTPS and WSS only (a real TLS client verifies the server's certificate; plain HTTP gets nothing)."""
import asyncio
import json
import socket
import ssl
import subprocess
import urllib.request

import websockets

from conftest import Server, chorus_binary


def make_certificate(tmp_path):
    """A CA and a certificate for "localhost", made by `chorus cert` (a test CA, as a real
    deployment would use its public CA's certificate)."""
    subprocess.run([chorus_binary(), "cert", "ca", "--out", f"{tmp_path}/ca"], check=True, capture_output=True)
    subprocess.run([chorus_binary(), "cert", "node", "--id", "localhost", "--ca", f"{tmp_path}/ca", "--out", f"{tmp_path}/srv"],
                   check=True, capture_output=True)
    return f"{tmp_path}/srv/localhost.pem", f"{tmp_path}/srv/localhost-key.pem", f"{tmp_path}/ca/ca.pem"


def https(ctx, port, method, path, body=None, token=None):
    req = urllib.request.Request(f"https://localhost:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        return r.status, json.loads(r.read() or b"{}")


def test_https_and_wss_only(datadir, tmp_path):
    cert, key, ca = make_certificate(tmp_path)
    server = Server(datadir + "/data", "--tls-cert", cert, "--tls-key", key)
    try:
        ctx = ssl.create_default_context(cafile=ca)
        status, health = https(ctx, server.port, "GET", "/healthz")
        assert status == 200 and health["status"] == "ok"
        status, created = https(ctx, server.port, "POST", "/v1/users", {"username": "ann", "password": "password1", "email": "a@example.com"})
        assert status == 201
        status, session = https(ctx, server.port, "POST", "/v1/sessions", {"username": "ann", "password": "password1"})
        assert status == 201

        async def hello():
            async with websockets.connect(f"wss://localhost:{server.port}/v1/ws?token={session['token']}", ssl=ctx) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 10))
        frame = asyncio.run(hello())
        assert frame["type"] == "hello" and frame["userId"] == created["userId"]

        # Plain HTTP on the TLS port gets no HTTP answer.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            try:
                while chunk := s.recv(4096):
                    answer += chunk
            except (ConnectionResetError, socket.timeout):
                pass
            assert b"HTTP/1.1 200" not in answer and b'"status"' not in answer, answer
    finally:
        server.stop()


def test_a_key_without_a_certificate_exits_2(datadir, tmp_path):
    cert, key, _ = make_certificate(tmp_path)
    p = subprocess.run([chorus_binary(), "serve", "--data", datadir + "/d", "--tls-key", key], capture_output=True, timeout=30)
    assert p.returncode == 2 and "--tls-key: needs --tls-cert" in p.stderr.decode(), p.stderr.decode()
    p = subprocess.run([chorus_binary(), "serve", "--data", datadir + "/d", "--tls-cert", cert, "--tls-key", cert],
                       capture_output=True, timeout=30)
    assert p.returncode == 2 and "--tls-key" in p.stderr.decode(), p.stderr.decode()
