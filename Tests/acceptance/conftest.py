"""Starts the real `chorus` binary for acceptance tests and talks to it as any client would."""
import atexit
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def chorus_binary() -> str:
    env = os.environ.get("CHORUS_BIN")
    if env:
        return env
    for candidate in (ROOT / ".build" / "debug" / "chorus", ROOT / ".build" / "release" / "chorus"):
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("chorus binary not found: run `swift build` first or set CHORUS_BIN")


_CERTS = []


def mesh_security(node_id: str) -> list:
    """`--mesh-cert/--mesh-key/--mesh-ca` for `node_id`: certificates of one CA per test run, made
    by `chorus cert` (the cluster tests run with real mutual TLS on the mesh)."""
    if not _CERTS:
        root = tempfile.mkdtemp(prefix="chorus-certs-")
        atexit.register(shutil.rmtree, root, True)
        subprocess.run([chorus_binary(), "cert", "ca", "--out", f"{root}/ca"], check=True, capture_output=True)
        _CERTS.append(root)
    root = _CERTS[0]
    if not os.path.exists(f"{root}/nodes/{node_id}.pem"):
        subprocess.run([chorus_binary(), "cert", "node", "--id", node_id, "--ca", f"{root}/ca", "--out", f"{root}/nodes"],
                       check=True, capture_output=True)
    return ["--mesh-cert", f"{root}/nodes/{node_id}.pem", "--mesh-key", f"{root}/nodes/{node_id}-key.pem",
            "--mesh-ca", f"{root}/ca/ca.pem"]


def http(base, method, path, body=None, token=None, timeout=10):
    """One HTTP request to the node at `base` (HOST:PORT): (status, decoded JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{base}{path}", method=method, data=data)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else {}


class Server:
    def __init__(self, data: str, *extra: str, http: str = "127.0.0.1:0", fast_hash: bool = True):
        self.data = data
        self.stderr = open(data + ".stderr.log", "ab")
        self.proc = subprocess.Popen(
            [chorus_binary(), "serve", "--http", http, "--data", data, *(["--insecure-fast-password-hash"] if fast_hash else []), *extra],
            stdout=subprocess.PIPE, stderr=self.stderr)
        line = self.proc.stdout.readline().decode()
        if "listening on http://127.0.0.1:" not in line and "listening on https://127.0.0.1:" not in line:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(line.split("://127.0.0.1:")[1].split(" ")[0])
        self.base = f"127.0.0.1:{self.port}"

    def http(self, method, path, body=None, token=None, timeout=10):
        return http(self.base, method, path, body, token, timeout)

    def user(self, name):
        status, created = self.http("POST", "/v1/users", {"username": name, "password": "password1", "email": f"{name}@example.com"})
        assert status == 201, created
        status, session = self.http("POST", "/v1/sessions", {"username": name, "password": "password1"})
        assert status == 201, session
        return {"id": created["userId"], "token": session["token"], "name": name}

    def counter(self, name):
        """A Prometheus counter from /metrics, summed over its labels (0 if not yet exported)."""
        text = urllib.request.urlopen(f"http://{self.base}/metrics", timeout=10).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.split("{")[0].split(" ")[0] == name)

    def ws_url(self, token=None):
        return f"ws://{self.base}/v1/ws" + (f"?token={token}" if token else "")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.stderr.close()
        return self.proc.returncode

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=20)
        self.stderr.close()


@pytest.fixture
def datadir():
    d = tempfile.mkdtemp(prefix="chorus-acceptance-")
    yield d
    # CHORUS_KEEP_DATA=1 keeps data directories and node logs for a look after a run.
    if os.environ.get("CHORUS_KEEP_DATA") != "1":
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(datadir):
    s = Server(datadir + "/data")
    yield s
    s.stop()
