"""PROTOCOL.md section 6, "Password hashing is a bounded resource", against the real binary:
registrations are limited per client address (429 with Retry-After), and past
--max-pending-hashes a registration or login is refused at once with 503 and Retry-After (with the
real 600,000-iteration hash, so hashes do pile up)."""
import json
import threading
import time
import urllib.error
import urllib.request

from conftest import Server


def post(server, path, body):
    req = urllib.request.Request(f"http://{server.base}{path}", method="POST", data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def register(server, name):
    return post(server, "/v1/users", {"username": name, "password": "password1", "email": f"{name}@example.com"})


def test_registrations_are_limited_per_client_address(datadir):
    server = Server(datadir + "/data", "--register-rate-limit", "0.1:3")
    try:
        for i in range(3):
            assert register(server, f"user{i}")[0] == 201
        status, headers, body = register(server, "user3")
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        assert int(headers["Retry-After"]) >= 1
        # Logging in is another bucket.
        assert post(server, "/v1/sessions", {"username": "user0", "password": "password1"})[0] == 201
    finally:
        server.stop()


def test_past_the_pending_hash_bound_requests_get_503_at_once(datadir):
    server = Server(datadir + "/data", "--register-rate-limit", "off", "--max-pending-hashes", "2", fast_hash=False)
    try:
        results = []
        lock = threading.Lock()

        def one(i):
            start = time.monotonic()
            status, headers, body = register(server, f"flood{i}")
            with lock:
                results.append((status, headers.get("Retry-After"), body, time.monotonic() - start))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refused = [r for r in results if r[0] == 503]
        created = [r for r in results if r[0] == 201]
        assert len(refused) + len(created) == 12, results
        assert refused and created, results
        for status, retry_after, body, took in refused:
            assert body["error"]["code"] == "unavailable" and retry_after == "1", body
        # Once the flood is through, a login is served.
        name = created[0][2]["username"]
        assert post(server, "/v1/sessions", {"username": name, "password": "password1"})[0] == 201
    finally:
        server.stop()
