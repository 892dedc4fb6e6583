"""Three replicated `chorus serve` nodes with a real etcd (PROTOCOL.md section 7): a leader killed
with `kill -9` and its data directory deleted mid-stream, brought back empty to rebuild, then
another node killed; nothing acknowledged is lost, and writes come back within the lease + 2 s."""
import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import websockets

from conftest import Server, http, mesh_security
from test_cluster import free_ports, wait_ready

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
LEASE_S = 3


def etcd_binary():
    for path in ("/usr/bin/etcd", "/usr/local/bin/etcd"):
        if os.path.exists(path):
            return path
    pytest.skip("etcd not installed (`bash scripts/deps.sh --test` installs etcd-server)")


class Etcd:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chorus-etcd-")
        client, peer = free_ports(2)
        self.url = f"http://127.0.0.1:{client}"
        self.proc = subprocess.Popen(
            [etcd_binary(), "--name", "t", "--data-dir", self.dir + "/data", "--listen-client-urls", self.url,
             "--advertise-client-urls", self.url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}", "--initial-cluster", f"t=http://127.0.0.1:{peer}",
             "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Listening before anything else picks ports: free_ports could hand out etcd's otherwise.
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", client), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "etcd did not start"
                time.sleep(0.05)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def range(self, prefix):
        """Every key under `prefix` with its value, as text, through the v3 JSON gateway."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = {"key": base64.b64encode(prefix.encode()).decode(), "range_end": base64.b64encode(end.encode()).decode()}
        status, r = http(self.url.removeprefix("http://"), "POST", "/v3/kv/range", body, timeout=5)
        assert status == 200, r
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in r.get("kvs", [])}

    def table(self, cluster="chorus"):
        """The partition table: partition -> (epoch, leader, replicas in ring order)."""
        out = {}
        for key, value in self.range(f"/chorus/{cluster}/partitions/").items():
            epoch, leader, replicas = value.split()[:3]
            out[int(key.rsplit("/", 1)[1])] = (int(epoch), leader, replicas.split(","))
        return out


def partition_of(key_id):
    """A minted id carries its ring point; its partition is the point's top 6 bits."""
    return (ALPHABET.index(key_id[2]) << 1) | (ALPHABET.index(key_id[3]) >> 4)


class ReplicatedCluster:
    """n1-n3 started; `spare` more ids (n4, ...) have ports, for nodes a test adds."""

    def __init__(self, datadir, etcd, extra=(), spare=0):
        self.ids = ["n1", "n2", "n3"]
        self.extra = list(extra)
        every = self.ids + [f"n{4 + k}" for k in range(spare)]
        ports = free_ports(2 * len(every))
        self.mesh, self.http_ports = dict(zip(every, ports[:len(every)])), dict(zip(every, ports[len(every):]))
        self.datadir, self.etcd = datadir, etcd
        self.nodes = {i: self.start(i) for i in self.ids}
        for n in self.nodes.values():
            wait_ready(n)

    def start(self, i, *more):
        peers = [a for p in self.ids if p != i for a in ("--peer", f"{p}@127.0.0.1:{self.mesh[p]}")]
        return Server(f"{self.datadir}/{i}", "--node-id", i, "--mesh", f"127.0.0.1:{self.mesh[i]}", *mesh_security(i), *peers,
                      "--etcd", self.etcd.url, "--lease", f"{LEASE_S}s", "--register-rate-limit", "off", "--login-rate-limit", "off",
                      "--user-send-rate-limit", "off", *self.extra, *more, http=f"127.0.0.1:{self.http_ports[i]}")

    def alive(self):
        # A snapshot: writer threads call this while a test adds a node.
        return [n for n in list(self.nodes.values()) if n.proc.poll() is None]

    def leader_of(self, partition):
        for n in self.alive():
            status, view = n.http("GET", "/v1/cluster")
            if status == 200:
                for node in view["nodes"]:
                    if partition in node.get("leads", []):
                        return node["nodeId"]
        return None

    def stop(self):
        for n in self.nodes.values():
            if n.proc.poll() is None:
                n.kill()


def until(fn, seconds, what):
    deadline = time.monotonic() + seconds
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.1)


class Writer(threading.Thread):
    """Sends to one conversation until stopped, each message retried with the same clientMsgId on
    the live nodes until acknowledged; records what was acknowledged and the longest wait. A request
    that gets no answer within `timeout` seconds (a stopped node) is retried on the next node;
    `pause` seconds go by between messages."""

    def __init__(self, cluster, conversation, token, tag, timeout=10, pause=0.0):
        super().__init__(daemon=True)
        self.cluster, self.conversation, self.token, self.tag = cluster, conversation, token, tag
        self.timeout, self.pause = timeout, pause
        self.acked = []
        self.longest = 0.0
        self.stopping = threading.Event()

    def run(self):
        i = 0
        while not self.stopping.is_set():
            body = {"body": f"{self.tag} {i}", "clientMsgId": f"{self.tag}-{i}"}
            started = time.monotonic()
            attempt = 0
            while True:
                nodes = self.cluster.alive()
                if not nodes:  # every node is being restarted or stopped
                    time.sleep(0.1)
                    continue
                node = nodes[(i + attempt) % len(nodes)]  # a retry goes to the next node
                attempt += 1
                try:
                    status, m = node.http("POST", f"/v1/conversations/{self.conversation}/messages", body, self.token, self.timeout)
                except OSError:
                    status, m = 0, None
                self.last = (status, node.base, m)
                if status in (200, 201):
                    self.acked.append((m["seq"], m["messageId"], m["body"], m["clientMsgId"]))
                    break
                if time.monotonic() - started > 60:
                    raise AssertionError(f"{self.tag}: message {i} never acknowledged: {status} {m}")
                time.sleep(0.05)
            self.longest = max(self.longest, time.monotonic() - started)
            i += 1
            if self.pause:
                time.sleep(self.pause)


def writes_go_on(writers, what, count=5):
    """Waits until every writer has `count` more acknowledgments; says how far each got if not."""
    before = {w.tag: len(w.acked) for w in writers}
    try:
        until(lambda: all(len(w.acked) >= before[w.tag] + count for w in writers), 30, what)
    except AssertionError:
        raise AssertionError(f"{what}: " + "; ".join(
            f"{w.tag} {len(w.acked) - before[w.tag]} more, last {getattr(w, 'last', None)}" for w in writers))


def stop_writers(writers):
    for w in writers:
        w.stopping.set()
    for w in writers:
        w.join(timeout=90)


def history(node, cid, token, after=0):
    """A conversation's messages after `after`, every page (None if a page is refused)."""
    messages = []
    while True:
        status, page = node.http("GET", f"/v1/conversations/{cid}/messages?after={after}&limit=200", None, token)
        if status != 200:
            return None
        messages += page["messages"]
        if not page["hasMore"]:
            return messages
        after = messages[-1]["seq"]


async def sync_all(url):
    """Every inbox entry of the user, from inboxSeq 1, through `sync`."""
    async with websockets.connect(url) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello"
        await ws.send(json.dumps({"type": "sync", "after": 0}))
        entries = []
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "synced":
                return entries
            if "inboxSeq" in frame and frame["type"] in ("message", "receipt"):
                entries.append(frame)


def start_writers(c):
    """Six users, a group of all, a group of three and two direct conversations (created through n3),
    one writer each, running until each has five acknowledgments. Returns (users, conversations,
    writers); users carry "name", "id", "token" and conversations are (id, creator's token, members)."""
    first = c.nodes["n1"]
    # Not ready for writes until every partition has a leader (start-up failovers run first).
    until(lambda: first.http("POST", "/v1/users", {"username": "user0", "password": "password1", "email": "u0@example.com"})[0] == 201,
          30, "first registration")
    # A partition moving (a hand-off) answers 503 for a moment: retried, as clients do.
    def retried(node, method, path, body, token=None):
        answer = []
        until(lambda: answer.append(node.http(method, path, body, token)) or answer[-1][0] != 503, 30, f"{method} {path}")
        return answer[-1]
    users = [{"name": "user0"}]
    for k in range(1, 6):
        users.append({"name": f"user{k}"})
        status, created = retried(first, "POST", "/v1/users", {"username": f"user{k}", "password": "password1", "email": f"u{k}@example.com"})
        assert status == 201, created
    for u in users:
        status, s = retried(c.nodes["n2"], "POST", "/v1/sessions", {"username": u["name"], "password": "password1"})
        assert status == 201, s
        u["id"], u["token"] = s["userId"], s["token"]
    ids = [u["id"] for u in users]
    conversations = []
    for creator, members, title in [(0, ids[1:], "all"), (1, [ids[2], ids[3]], "some"), (0, [ids[1]], None), (4, [ids[5]], None)]:
        status, conv = retried(c.nodes["n3"], "POST", "/v1/conversations", {"members": members, **({"title": title} if title else {})},
                               users[creator]["token"])
        assert status == 201, conv
        conversations.append((conv["conversationId"], users[creator]["token"], [ids[creator]] + members))
    writers = [Writer(c, cid, token, f"w{k}") for k, (cid, token, _) in enumerate(conversations)]
    for w in writers:
        w.start()
    until(lambda: all(len(w.acked) >= 5 for w in writers), 30, "writes before the fault")
    return users, conversations, writers


def assert_nothing_lost(alive, writers, conversations, users, context):
    """Every acknowledged message is in every live node's history once, gap-free, with its
    messageId; writes came back within the lease + 2 s; every account logs in on every live node;
    every inbox syncs complete and gap-free."""
    for w, (cid, token, _) in zip(writers, conversations):
        for n in alive:
            # A partition moving (a failover, a hand-off) answers 503 for a moment: retried.
            read = []
            until(lambda: read.append(history(n, cid, token)) or read[-1] is not None, 30, f"{w.tag} on {n.base}: history")
            messages = read[-1]
            seqs = [m["seq"] for m in messages]
            assert seqs == list(range(1, len(seqs) + 1)), f"{w.tag} on {n.base}: seq not gap-free"
            held = {m["seq"]: (m["messageId"], m["body"], m["clientMsgId"]) for m in messages}
            for seq, message_id, body, client_id in w.acked:
                assert held.get(seq) == (message_id, body, client_id), f"{w.tag}: acknowledged seq {seq} lost or changed"
        # Writes came back within the lease + 2 s (with room for a loaded machine).
        assert w.longest < LEASE_S + 2 + 3, f"{w.tag}: a write waited {w.longest:.1f} s"
        print(f"{w.tag}: {len(w.acked)} acknowledged, longest wait {w.longest:.2f} s")

    # Every account logs in on every live node; every inbox syncs complete and gap-free.
    expected = {}
    for w, (cid, _, _) in zip(writers, conversations):
        expected[cid] = {seq for seq, *_ in w.acked}
    members = {cid: m for cid, _, m in conversations}
    # Entries for members other than the sender arrive after the ack (the fan-out); wait for them.
    for u in users:
        for n in alive:
            status, s = n.http("POST", "/v1/sessions", {"username": u["name"], "password": "password1"})
            assert status == 201, (u["name"], n.base, s)
        wanted = {(cid, seq) for cid, seqs in expected.items() if u["id"] in members[cid] for seq in seqs}
        deadline = time.monotonic() + 30
        while True:
            entries = asyncio.run(sync_all(alive[0].ws_url(s["token"])))
            got = [(e["conversationId"], e["seq"]) for e in entries if e["type"] == "message"]
            if wanted <= set(got) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [e["inboxSeq"] for e in entries] == list(range(1, len(entries) + 1)), f"{u['name']}: inboxSeq not gap-free"
        assert len(got) == len(set(got)), f"{u['name']}: a message twice in the inbox"
        missing = sorted(wanted - set(got))
        assert not missing, f"{u['name']} (p{partition_of(u['id'])}): inbox lacks {missing[:5]}, {context}"


@pytest.fixture
def replicated(datadir):
    etcd = Etcd()
    cluster = None
    try:
        cluster = ReplicatedCluster(datadir, etcd)
        yield cluster
    finally:
        if cluster:
            cluster.stop()
        etcd.stop()


def test_a_killed_and_wiped_leader_loses_nothing_acknowledged(replicated):
    c = replicated
    users, conversations, writers = start_writers(c)

    # Kill -9 the leader of the big group's partition and delete its data directory.
    victim = c.leader_of(partition_of(conversations[0][0]))
    assert victim, "no leader for the group's partition"
    c.nodes[victim].kill()
    shutil.rmtree(f"{c.datadir}/{victim}")
    writes_go_on(writers, "writes after the kill")

    # Back with an empty disk: it rebuilds its copies from the leaders while writes go on.
    c.nodes[victim] = c.start(victim)
    wait_ready(c.nodes[victim])
    until(lambda: (lambda v: v[0] == 200 and not next(n for n in v[1]["nodes"] if n["nodeId"] == victim).get("rebuilding"))(
        c.nodes[victim].http("GET", "/v1/cluster")), 30, "the wiped node rebuilt")

    # Kill another node: the rebuilt copies now count.
    second = next(i for i in c.ids if i != victim)
    c.nodes[second].kill()
    writes_go_on(writers, "writes after the second kill")
    stop_writers(writers)

    alive = c.alive()
    assert len(alive) == 2
    assert_nothing_lost(alive, writers, conversations, users, f"victim {victim}, second {second}")

    # A message acknowledged before the first kill, sent again: the same seq and messageId.
    seq, message_id, body, client_id = writers[0].acked[0]
    status, again = alive[0].http("POST", f"/v1/conversations/{conversations[0][0]}/messages", {"body": body, "clientMsgId": client_id},
                                  conversations[0][1])
    assert status == 200 and (again["seq"], again["messageId"]) == (seq, message_id), again


@pytest.mark.parametrize("args, named", [
    (["--etcd", "http://127.0.0.1:2379"], "--mesh"),
    (["--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "n2@127.0.0.1:9002", "--etcd", "https://127.0.0.1:2379"], "--etcd"),
    (["--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "n2@127.0.0.1:9002", "--etcd", "http://127.0.0.1:2379",
      "--replication-factor", "3"], "--replication-factor"),
    (["--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "n2@127.0.0.1:9002", "--etcd", "http://127.0.0.1:2379",
      "--ack-replicas", "3"], "--ack-replicas"),
    (["--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "n2@127.0.0.1:9002", "--etcd", "http://127.0.0.1:2379",
      "--lease", "1500ms"], "--lease"),
    (["--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "n2@127.0.0.1:9002", "--etcd", "http://127.0.0.1:2379",
      "--join"], "--join"),
    (["--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "n2@127.0.0.1:9002", "--etcd", "http://127.0.0.1:2379",
      "--rebalance-after", "500ms"], "--rebalance-after"),
    (["--ack-replicas", "2"], "--etcd"),
])
def test_bad_replication_options_exit_2_naming_the_option(datadir, args, named):
    from conftest import chorus_binary
    p = subprocess.run([chorus_binary(), "serve", "--data", datadir + "/d", "--node-id", "n1", *args], capture_output=True, timeout=30)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert named in err, err


def test_a_paused_leader_acknowledges_nothing_it_lost_and_converges(replicated):
    """SIGSTOP a leader past its lease while writes go on elsewhere; a send it took meanwhile is not
    acknowledged after SIGCONT (its followers promised the new epoch), it stops (exit 75), and
    restarted it serves the same history as every other node."""
    import signal as sig
    c = replicated
    first = c.nodes["n1"]
    until(lambda: first.http("POST", "/v1/users", {"username": "pat", "password": "password1", "email": "p@example.com"})[0] == 201,
          30, "first registration")
    assert first.http("POST", "/v1/users", {"username": "quinn", "password": "password1", "email": "q@example.com"})[0] == 201
    status, pat = first.http("POST", "/v1/sessions", {"username": "pat", "password": "password1"})
    status, quinn = first.http("POST", "/v1/sessions", {"username": "quinn", "password": "password1"})
    status, conv = first.http("POST", "/v1/conversations", {"members": [quinn["userId"]], "title": "g"}, pat["token"])
    assert status == 201, conv
    cid = conv["conversationId"]
    paused = c.leader_of(partition_of(cid))
    others = [n for i, n in c.nodes.items() if i != paused]
    writer = Writer(c, cid, pat["token"], "before")
    writer.cluster = type("Live", (), {"alive": lambda self: others})()
    writer.start()
    until(lambda: len(writer.acked) >= 5, 30, "writes before the pause")

    c.nodes[paused].proc.send_signal(sig.SIGSTOP)
    answers = []

    def send_to_paused():
        # Answered only after SIGCONT: a timeout longer than the pause.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", c.http_ports[paused], timeout=60)
        try:
            conn.request("POST", f"/v1/conversations/{cid}/messages", json.dumps({"body": "during", "clientMsgId": "during"}),
                         {"Authorization": f"Bearer {pat['token']}", "Content-Type": "application/json"})
            r = conn.getresponse()
            raw = r.read()
            answers.append((r.status, json.loads(raw) if raw else {}))
        except OSError as e:  # the node stopped before answering: nothing acknowledged
            answers.append((0, str(e)))
    stuck = threading.Thread(target=send_to_paused, daemon=True)
    stuck.start()
    count = len(writer.acked)
    until(lambda: len(writer.acked) >= count + 5, LEASE_S + 20, "writes elsewhere while the leader is paused")
    c.nodes[paused].proc.send_signal(sig.SIGCONT)
    stuck.join(timeout=30)
    writer.stopping.set()
    writer.join(timeout=90)
    assert c.nodes[paused].proc.wait(timeout=30) == 75, "a leader that lost its lease stops"

    c.nodes[paused] = c.start(paused)
    wait_ready(c.nodes[paused])
    histories = []
    for n in c.nodes.values():
        until(lambda: n.http("GET", f"/v1/conversations/{cid}/messages?limit=100", None, pat["token"])[0] == 200, 30, "history")
        histories.append({m["seq"]: (m["messageId"], m["body"], m["clientMsgId"])
                          for m in n.http("GET", f"/v1/conversations/{cid}/messages?limit=100", None, pat["token"])[1]["messages"]})
    assert histories[0] == histories[1] == histories[2], "the same seq holds the same message on every node"
    held = histories[0]
    assert sorted(held) == list(range(1, len(held) + 1))
    for seq, message_id, body, client_id in writer.acked:
        assert held[seq] == (message_id, body, client_id)
    assert len(answers) == 1, "the send to the paused node ended"
    print("the paused leader answered", answers[0][0])
    for status, m in answers:
        if status in (200, 201):
            assert held.get(m["seq"]) == (m["messageId"], m["body"], m["clientMsgId"]), "acknowledged by the paused leader, then lost"
