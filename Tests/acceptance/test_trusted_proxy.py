"""PROTOCOL.md section 6: behind a proxy, --trusted-proxy CIDR makes X-Forwarded-For name the
client (only from those peers); per-address limits count IPv6 clients by their /64."""
import json
import urllib.error
import urllib.request

from conftest import Server


def login(server, forwarded_for=None):
    req = urllib.request.Request(f"http://{server.base}/v1/sessions", method="POST",
                                 data=json.dumps({"username": "ann", "password": "password1"}).encode())
    if forwarded_for:
        req.add_header("X-Forwarded-For", forwarded_for)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_forwarded_for_counts_only_from_a_trusted_proxy(datadir):
    # The tests' loopback peer is a trusted proxy: each forwarded client has its own bucket.
    server = Server(datadir + "/data", "--login-rate-limit", "0.01:2", "--trusted-proxy", "127.0.0.0/8")
    try:
        server.user("ann")  # its login comes from the proxy itself (no header): the proxy's bucket
        assert [login(server, "203.0.113.5") for _ in range(3)] == [201, 201, 429]
        assert login(server, "203.0.113.6") == 201, "another client behind the proxy"
        # A spoofed left part is not believed: the proxy's nearest hop is the client.
        assert login(server, "198.51.100.1, 203.0.113.5") == 429
        # IPv6 clients count per /64.
        assert [login(server, "2001:db8:0:1::1"), login(server, "2001:db8:0:1::2"), login(server, "2001:db8:0:1::3")] == [201, 201, 429]
        assert login(server, "2001:db8:0:2::1") == 201
    finally:
        server.stop()


def test_forwarded_for_is_ignored_from_anyone_else(datadir):
    server = Server(datadir + "/data", "--login-rate-limit", "0.01:2")
    try:
        server.user("ann")  # one login from this peer already
        assert [login(server, f"203.0.113.{i}") for i in range(3)] == [201, 429, 429], "one bucket: the real peer's"
    finally:
        server.stop()
