"""A replicated node cut off by the network, not killed (PROTOCOL.md section 7): three `chorus serve`
processes, each in its own network namespace with one veth on a bridge, etcd on the bridge. Taking
a node's link down leaves it running but alone: it must acknowledge nothing for the partitions it
led (its clients, inside its namespace, get `unavailable`), while the other two take them over
within the lease + 2 s. Healed, the cut node finds its lease gone and stops (exit 75); restarted,
it catches up, and every acknowledged message is on every node at its seq.

Needs root and network namespaces (`ip netns`); skipped otherwise. Addresses are private
(10.77.0.0/24 on a bridge with no other port): nothing leaves the machine."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import chorus_binary, http, mesh_security
from test_replication import etcd_binary, history, partition_of

LEASE_S = 3
BRIDGE, NET = "chorusbr0", "10.77.0"
IDS = ["n1", "n2", "n3"]


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def netns_available():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = ip("netns", "add", "chorus-probe", check=False)
    if probe.returncode != 0:
        return False
    ip("netns", "del", "chorus-probe", check=False)
    return True


class Network:
    """A bridge with 10.77.0.1 in this namespace, and per node a namespace `chorus-<id>` whose eth0
    (10.77.0.1x) is a veth whose other end, `chv-<id>`, is on the bridge."""

    def __init__(self):
        self.teardown()
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{NET}.1/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for k, i in enumerate(IDS):
            ns = f"chorus-{i}"
            ip("netns", "add", ns)
            ip("link", "add", f"chv-{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", f"chv-{i}", "master", BRIDGE)
            ip("link", "set", f"chv-{i}", "up")
            ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    @staticmethod
    def address(node_id):
        return f"{NET}.{11 + IDS.index(node_id)}"

    def cut(self, node_id):
        ip("link", "set", f"chv-{node_id}", "down")

    def heal(self, node_id):
        ip("link", "set", f"chv-{node_id}", "up")

    @staticmethod
    def teardown():
        for i in IDS:
            ip("netns", "del", f"chorus-{i}", check=False)
            ip("link", "del", f"chv-{i}", check=False)
        ip("link", "del", BRIDGE, check=False)


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class NsNode:
    """`chorus serve` inside the node's namespace, on its bridge address (HTTP :8080, mesh :9000)."""

    def __init__(self, node_id, datadir, etcd_url):
        self.id, self.addr = node_id, Network.address(node_id)
        self.base = f"{self.addr}:8080"
        peers = [a for p in IDS if p != node_id for a in ("--peer", f"{p}@{Network.address(p)}:9000")]
        self.stderr = open(f"{datadir}/{node_id}.stderr.log", "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", f"chorus-{node_id}", chorus_binary(), "serve", "--http", self.base, "--data", f"{datadir}/{node_id}",
             "--insecure-fast-password-hash", "--node-id", node_id, "--mesh", f"{self.addr}:9000", *mesh_security(node_id), *peers,
             "--etcd", etcd_url, "--lease", f"{LEASE_S}s", "--register-rate-limit", "off", "--login-rate-limit", "off",
             "--user-send-rate-limit", "off"], stdout=subprocess.PIPE, stderr=self.stderr)
        line = self.proc.stdout.readline().decode()
        assert "listening on" in line, f"{node_id} did not start: {line!r}"

    def http(self, method, path, body=None, token=None, timeout=5):
        """`conftest.http`; a node out of reach (cut off, stopped) is status 0."""
        try:
            return http(self.base, method, path, body, token, timeout)
        except OSError:
            return 0, None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# Sends to one conversation from inside a namespace (the cut node's own clients), once per 100 ms
# for `seconds`; prints one JSON line per attempt: time since start, status.
IN_NAMESPACE_CLIENT = r"""
import json, sys, time, urllib.request, urllib.error
base, cid, token, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
start = time.time()
k = 0
while time.time() - start < seconds:
    sent = time.time()
    req = urllib.request.Request(f"http://{base}/v1/conversations/{cid}/messages", method="POST",
                                 data=json.dumps({"body": f"cut {k}", "clientMsgId": f"cut-{k}"}).encode())
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            status, answer = r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        status, answer = e.code, json.loads(e.read() or b"{}")
    except OSError:
        status, answer = 0, None
    print(json.dumps({"sent": sent, "answered": time.time(), "status": status, "answer": answer}), flush=True)
    k += 1
    time.sleep(0.1)
"""


@pytest.fixture
def netns_cluster(datadir):
    if not netns_available():
        pytest.skip("network namespaces need root and `ip netns`")
    net = Network()
    etcd_dir = tempfile.mkdtemp(prefix="chorus-etcd-")
    client, peer = free_port(f"{NET}.1"), free_port(f"{NET}.1")
    url = f"http://{NET}.1:{client}"
    etcd = subprocess.Popen(
        [etcd_binary(), "--name", "t", "--data-dir", etcd_dir + "/data", "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://{NET}.1:{peer}", "--initial-advertise-peer-urls", f"http://{NET}.1:{peer}",
         "--initial-cluster", f"t=http://{NET}.1:{peer}", "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = {}
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((f"{NET}.1", client), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "etcd did not start"
                time.sleep(0.05)
        for i in IDS:
            nodes[i] = NsNode(i, datadir, url)
        yield net, nodes, url
    finally:
        for n in nodes.values():
            n.kill()
        etcd.kill()
        etcd.wait()
        shutil.rmtree(etcd_dir, ignore_errors=True)
        Network.teardown()


def until(fn, seconds, what):
    deadline = time.monotonic() + seconds
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.1)


def leaders(node):
    status, view = node.http("GET", "/v1/cluster")
    if status != 200:
        return None
    out = {p: x["nodeId"] for x in view["nodes"] for p in x.get("leads", [])}
    return out if len(out) == 64 else None


def test_a_cut_off_leader_acknowledges_nothing_and_the_majority_takes_over(netns_cluster, datadir):
    net, nodes, etcd_url = netns_cluster
    n1, n2, n3 = nodes["n1"], nodes["n2"], nodes["n3"]
    table = until(lambda: leaders(n2), 60, "every partition led")

    # Users, one of them led by n1, and a group of theirs led by n1 (a group is minted in a
    # partition its creator's node leads): n1 runs both the sender's and the conversation's side.
    users = []
    for k in range(40):
        until(lambda: n2.http("POST", "/v1/users", {"username": f"user{k}", "password": "password1", "email": f"u{k}@x.com"})[0] in (201, 409),
              30, "registration")
        status, s = until(lambda: (lambda r: r if r[0] == 201 else None)(n2.http("POST", "/v1/sessions", {"username": f"user{k}", "password": "password1"})),
                          30, "login")
        users.append((s["userId"], s["token"]))
        if len(users) >= 3 and any(table[partition_of(u)] == "n1" for u, _ in users):
            break
    creator = next(((u, t) for u, t in users if table[partition_of(u)] == "n1"), None)
    assert creator, "no user landed in a partition n1 leads"
    target = None
    for k in range(60):
        members = [u for u, _ in users if u != creator[0]][:2]
        status, conv = n2.http("POST", "/v1/conversations", {"members": members, "title": f"g{k}"}, creator[1])
        if status == 201 and table.get(partition_of(conv["conversationId"])) == "n1":
            target = (conv["conversationId"], creator[1])
            break
    assert target, "no group landed in a partition n1 leads"
    cid, token = target

    # A writer through n2 and n3 only, each message retried with its clientMsgId until acknowledged.
    acked, stop = [], threading.Event()

    def write():
        i = 0
        while not stop.is_set():
            body = {"body": f"w {i}", "clientMsgId": f"w-{i}"}
            attempt = 0
            while not stop.is_set():
                node = (n2, n3)[attempt % 2]
                attempt += 1
                sent = time.time()
                status, m = node.http("POST", f"/v1/conversations/{cid}/messages", body, token, timeout=1)
                if status in (200, 201):
                    acked.append((sent, m["seq"], m["messageId"], m["clientMsgId"], time.time()))
                    break
                time.sleep(0.05)
            i += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    until(lambda: len(acked) >= 20, 30, "writes before the cut")

    # The cut node's own clients, inside its namespace, for the lease and a few seconds more.
    inside = subprocess.Popen(["ip", "netns", "exec", "chorus-n1", "python3", "-c", IN_NAMESPACE_CLIENT, n1.base, cid, token, str(LEASE_S + 5)],
                              stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    cut_at = time.time()
    net.cut("n1")
    attempts = [json.loads(line) for line in inside.communicate(timeout=60)[0].splitlines()]

    # n1 acknowledged nothing sent after the cut (it can reach no follower: W = 2) and, once its
    # lease may have lapsed, answers at once that it cannot (503), rather than hanging.
    after = [a for a in attempts if a["sent"] > cut_at + 0.2]
    assert after, "the client inside n1's namespace made no attempt after the cut"
    assert all(a["status"] != 201 for a in after), [a for a in after if a["status"] == 201][:3]
    late = [a for a in after if a["sent"] > cut_at + LEASE_S + 1]
    assert late and all(a["status"] == 503 and a["answer"]["error"]["code"] == "unavailable" for a in late), late[:3]

    # The majority took n1's partitions over and the writer goes on within the lease + 2 s.
    # (The first acknowledgment of an attempt sent after the cut.)
    resumed = until(lambda: next((done for sent, *_, done in acked if sent > cut_at), None), 30, "a write after the cut")
    assert resumed - cut_at <= LEASE_S + 2, f"writes resumed {resumed - cut_at:.2f} s after the cut"
    statuses = {}
    for a in after:
        statuses[a["status"]] = statuses.get(a["status"], 0) + 1
    print(f"cut: writes through the majority resumed after {resumed - cut_at:.2f} s; the cut node answered {statuses}, "
          f"first {after[0]['answer']}")
    assert until(lambda: (lambda t: t and "n1" not in t.values())(leaders(n2)), 30, "n1 leads nothing")

    # Healed: n1's lease is gone, so it stops (75); restarted, it follows and catches up.
    net.heal("n1")
    assert n1.proc.wait(timeout=30) == 75
    nodes["n1"] = n1 = NsNode("n1", datadir, etcd_url)
    until(lambda: leaders(n1), 60, "n1 sees every partition led")
    stop.set()
    writer.join(timeout=30)
    # Every acknowledged message, at its seq with its messageId, on every node, gap-free.
    for node in (n1, n2, n3):
        def complete():
            messages = history(node, cid, token)
            if messages is None or len(messages) < len(acked):
                return None
            return messages
        messages = until(complete, 30, f"{node.id} holds every acknowledged message")
        assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1)), node.id
        held = {m["seq"]: (m["messageId"], m["clientMsgId"]) for m in messages}
        for _, seq, message_id, client_id, _ in acked:
            assert held.get(seq) == (message_id, client_id), f"{node.id}: seq {seq}"
