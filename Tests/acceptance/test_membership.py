"""Changing a running cluster's membership: a fourth node joins three running ones, the
keys the ring gives it move with their state, and it leaves again; nothing is lost or duplicated.
Real `chorus serve` processes on 127.0.0.1, an operator's `POST /v1/cluster/members`, Python
`websockets` clients."""
import asyncio
import contextlib
import json
import random
import threading
import time

import pytest
import websockets

from conftest import Server, mesh_security
from ring import Ring
from test_cluster import frames_until, node_ports, send_until_acked, wait_ready

ADMIN = "admin-token-for-tests-0123456789"


class Nodes(dict):
    """Nodes by id, each started with the admin token; `start(i, *extra)` (re)starts one."""

    def __init__(self, datadir, ids, spare):
        super().__init__()
        self.datadir = datadir
        self.mesh, self.http = node_ports(ids + spare)
        self.initial = ids
        for i in ids:
            self[i] = self.start(i, ids)
        for n in self.values():
            wait_ready(n)

    def start(self, i, members, *extra):
        peers = [a for p in members if p != i for a in ("--peer", f"{p}@127.0.0.1:{self.mesh[p]}")]
        return Server(f"{self.datadir}/{i}", "--node-id", i, "--mesh", f"127.0.0.1:{self.mesh[i]}", *mesh_security(i), "--admin-token", ADMIN, *peers, *extra,
                      http=f"127.0.0.1:{self.http[i]}")

    def running(self):
        return [n for n in self.values() if n.proc.poll() is None]


@pytest.fixture
def nodes(datadir):
    ns = Nodes(datadir, ["n1", "n2", "n3"], ["n4"])
    yield ns
    for n in ns.values():
        if n.proc.poll() is None:
            n.stop()


def admin(node, body, token=ADMIN):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"http://{node.base}/v1/cluster/members", method="POST", data=json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def http_retry(node, method, path, token, body=None, seconds=20):
    """A request retried while it answers 503 (a node reconnecting, a key moving)."""
    deadline = time.monotonic() + seconds
    while True:
        status, answer = node.http(method, path, body, token=token)
        if status != 503 or time.monotonic() > deadline:
            return status, answer
        time.sleep(0.1)


def inbox_of(node, user, seconds=30):
    """A fresh session's `sync` from 0: every inbox entry (messages and receipts), retried while a
    node answers 503 or the inbox is still filling (reconciliation after the switch)."""
    async def once():
        async with websockets.connect(node.ws_url(user["token"])) as ws:
            hello = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "sync", "after": 0}))
            got = await frames_until(ws, lambda f: f["type"] == "synced", seconds=20)
            return hello, [f for f in got if f["type"] in ("message", "receipt")]
    return asyncio.run(once())


def expected_inbox(user, conversations, acked):
    return sorted((cid, seq) for cid, members in conversations.items() if user["id"] in members for seq in acked[cid])


def check_everything(live, users, conversations, acked, seconds=30):
    """History from every node, and every user's inbox by sync on a random node: each message of
    each of its conversations once, in seq order, inboxSeq without gaps."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            for cid, members in conversations.items():
                reader = next(u for u in users if u["id"] == members[0])
                for n in live:
                    status, page = http_retry(n, "GET", f"/v1/conversations/{cid}/messages?limit=200", reader["token"])
                    assert status == 200, page
                    assert [(m["seq"], m["body"]) for m in page["messages"]] == sorted(acked[cid].items()), (n.base, cid)
            for u in users:
                hello, entries = inbox_of(random.choice(live), u)
                messages = [(f["conversationId"], f["seq"]) for f in entries if f["type"] == "message"]
                assert sorted(messages) == expected_inbox(u, conversations, acked), u["name"]
                assert len(set(messages)) == len(messages), "no message twice"
                for cid in conversations:
                    seqs = [s for c, s in messages if c == cid]
                    assert seqs == sorted(seqs), "each conversation in seq order"
                seqs = [f["inboxSeq"] for f in entries]
                assert seqs == list(range(1, len(seqs) + 1)) and hello["inboxSeq"] == len(seqs), "inboxSeq without gaps"
            return
        except (AssertionError, websockets.InvalidStatus, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_node_joins_a_running_cluster_and_leaves_again_losing_nothing(nodes):
    three, four = Ring(["n1", "n2", "n3"]), Ring(["n1", "n2", "n3", "n4"])
    # Users whose keys move to n4 and users who stay, registered through different nodes.
    movers = [n for n in (f"mv{k}" for k in range(400)) if four.owner_of_username(n) == "n4"][:4]
    stayers = [n for n in (f"st{k}" for k in range(400)) if four.owner_of_username(n) != "n4"][:4]
    first = list(nodes.values())
    users = [first[k % 3].user(name) for k, name in enumerate(movers + stayers)]
    assert all(three.owner(u["id"]) != "n4" for u in users)

    # Groups and direct conversations until some are on points n4 will take and some are not.
    conversations, acked = {}, {}
    rng = random.Random(7)
    while sum(four.owner(c) == "n4" for c in conversations) < 2 or sum(four.owner(c) != "n4" for c in conversations) < 2:
        assert len(conversations) < 60, "placement never put a conversation on n4"
        creator = rng.choice(users)
        others = rng.sample([u for u in users if u is not creator], rng.choice([1, 3]))
        status, conv = first[len(conversations) % 3].http(
            "POST", "/v1/conversations", {"members": [o["id"] for o in others]}, token=creator["token"])
        assert status in (200, 201), conv
        if conv["conversationId"] not in conversations:
            conversations[conv["conversationId"]] = conv["members"]
            acked[conv["conversationId"]] = {}
    by_id = {u["id"]: u for u in users}
    counter = [0]
    lock = threading.Lock()

    def send(cid, live, r=rng):
        with lock:
            counter[0] += 1
            k = counter[0]
        sender = by_id[r.choice(conversations[cid])]
        m = send_until_acked(live, cid, sender, f"m{k}", f"body {k}")
        with lock:
            assert m["seq"] not in acked[cid] or acked[cid][m["seq"]] == m["body"]
            acked[cid][m["seq"]] = m["body"]

    for cid in conversations:
        for _ in range(4):
            send(cid, first)

    # n4 starts with --join, naming the running cluster; then an operator adds it through n2 while
    # messages keep being sent (refused ones are sent again with the same clientMsgId).
    nodes["n4"] = nodes.start("n4", nodes.initial, "--join")
    stop = threading.Event()
    failures = []

    def traffic(seed):
        r = random.Random(seed)
        try:
            while not stop.is_set():
                send(r.choice(list(conversations)), first, r)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    # A mover's WebSocket (through n1) is closed with 1012 by the change; a stayer's stays open.
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    mover_user = next(u for u in users if u["name"] == movers[1])
    stayer_user = next(u for u in users if u["name"] == stayers[1])
    sockets = contextlib.ExitStack()
    mover_ws = sockets.enter_context(connect(first[0].ws_url(mover_user["token"])))
    stayer_ws = sockets.enter_context(connect(first[0].ws_url(stayer_user["token"])))
    assert json.loads(mover_ws.recv(timeout=10))["type"] == "hello" and json.loads(stayer_ws.recv(timeout=10))["type"] == "hello"

    senders = [threading.Thread(target=traffic, args=(seed,)) for seed in range(4)]
    for t in senders:
        t.start()
    assert admin(nodes["n2"], {"add": "n4@127.0.0.1:1"}, token="wrong-token-wrong-token")[0] == 401
    status, answer = admin(nodes["n2"], {"add": f"n4@127.0.0.1:{nodes.mesh['n4']}"})
    stop.set()
    for t in senders:
        t.join()
    assert not failures, failures
    assert status == 200, answer
    try:
        while True:
            mover_ws.recv(timeout=10)  # messages sent meanwhile, then the close
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1012, closed
    stayer_ws.send(json.dumps({"type": "ping"}))
    while json.loads(stayer_ws.recv(timeout=10))["type"] != "pong":
        pass
    sockets.close()
    assert answer["epoch"] == 2 and [m["nodeId"] for m in answer["members"]] == ["n1", "n2", "n3", "n4"]
    for n in nodes.values():
        deadline = time.monotonic() + 20
        while True:
            view = n.http("GET", "/v1/cluster")[1]
            if [(x["nodeId"], x["status"]) for x in view["nodes"]] == [(i, "alive") for i in ("n1", "n2", "n3", "n4")] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert view["epoch"] == 2 and view["pendingEpoch"] is None, view
        assert [x["status"] for x in view["nodes"]] == ["alive"] * 4, view

    live = list(nodes.values())
    for cid in conversations:
        send(cid, live)
    check_everything(live, users, conversations, acked)
    # Tokens moved with their users: every old token works on every node; logins work on n4.
    for u in users:
        for n in live:
            assert http_retry(n, "GET", "/v1/me", u["token"])[1]["userId"] == u["id"]
    assert nodes["n4"].http("POST", "/v1/sessions", {"username": movers[0], "password": "password1"})[0] == 201

    # n4 really owns what moved: with it killed, a mover's requests fail and a stayer's do not;
    # restarted (from its membership file, no --join), it serves them again with nothing lost.
    nodes["n4"].kill()
    mover = next(u for u in users if u["name"] == movers[0])
    stayer = next(u for u in users if u["name"] == stayers[0])
    assert nodes["n1"].http("GET", "/v1/me", token=mover["token"])[0] == 503
    assert nodes["n1"].http("GET", "/v1/me", token=stayer["token"])[0] == 200
    nodes["n4"] = nodes.start("n4", ["n1", "n2", "n3", "n4"])
    wait_ready(nodes["n4"])
    live = list(nodes.values())
    check_everything(live, users, conversations, acked)

    # n4 leaves: its keys go back to n1..n3, again with nothing lost.
    status, answer = admin(nodes["n1"], {"remove": "n4"})
    assert status == 200 and answer["epoch"] == 3, answer
    nodes["n4"].stop()
    live = [nodes[i] for i in ("n1", "n2", "n3")]
    for cid in conversations:
        send(cid, live)
    check_everything(live, users, conversations, acked)
    for n in live:
        assert n.http("GET", "/v1/cluster")[1]["epoch"] == 3

    # The three restart from their membership files (their --peer flags still name n4's cluster of
    # three, which is the same ring) and still hold everything.
    for i in ("n1", "n2", "n3"):
        nodes[i].stop()
    for i in ("n1", "n2", "n3"):
        nodes[i] = nodes.start(i, ["n1", "n2", "n3"])
    live = [nodes[i] for i in ("n1", "n2", "n3")]
    for n in live:
        wait_ready(n)
    check_everything(live, users, conversations, acked)


def test_a_change_without_the_admin_token_or_with_a_bad_body_is_refused(nodes):
    n1 = nodes["n1"]
    assert admin(n1, {"add": "n9@127.0.0.1:9"}, token="nope")[0] == 401
    assert admin(n1, {"frobnicate": 1})[0] == 400
    assert admin(n1, {"add": "no-port"})[0] == 400
    assert admin(n1, {"remove": "n9"})[0] == 200  # not a member: nothing to do (the commit is re-sent)
    status, answer = admin(n1, {"add": f"n2@127.0.0.1:{nodes.mesh['n2']}"})
    assert status == 200 and answer["epoch"] == 1, "already a member: nothing changes"
    # A node that never started cannot hand anything over: the change aborts and nothing moved.
    status, answer = admin(n1, {"add": f"n4@127.0.0.1:{nodes.mesh['n4']}"})
    assert status == 503 and answer["error"]["code"] == "unavailable", answer
    for n in nodes.running():
        view = n.http("GET", "/v1/cluster")[1]
        assert view["epoch"] == 1 and view["pendingEpoch"] is None and len(view["nodes"]) == 3, view
    u = n1.user("after-abort")
    assert nodes["n3"].http("GET", "/v1/me", token=u["token"])[0] == 200


def test_a_change_whose_coordinator_dies_is_finished_by_repeating_it_elsewhere(nodes):
    first = list(nodes.values())
    four = Ring(["n1", "n2", "n3", "n4"])
    names = [n for n in (f"co{k}" for k in range(400)) if four.owner_of_username(n) == "n4"][:3]
    names += [n for n in (f"co{k}" for k in range(400)) if four.owner_of_username(n) != "n4"][:3]
    users = [first[k % 3].user(name) for k, name in enumerate(names)]
    status, group = first[0].http("POST", "/v1/conversations", {"members": [u["id"] for u in users[1:]]}, token=users[0]["token"])
    assert status == 201
    gid = group["conversationId"]
    conversations = {gid: group["members"]}
    acked = {gid: {}}
    for k in range(10):
        m = send_until_acked(first, gid, users[k % 6], f"c{k}", f"before {k}")
        acked[gid][m["seq"]] = m["body"]

    # n2 coordinates adding n4, which is not running yet: n2 prepares itself, then waits for n4.
    request = threading.Thread(target=lambda: _ignore_errors(lambda: admin(nodes["n2"], {"add": f"n4@127.0.0.1:{nodes.mesh['n4']}"})))
    request.start()
    deadline = time.monotonic() + 10
    while nodes["n2"].http("GET", "/v1/cluster")[1].get("pendingEpoch") != 2:
        assert time.monotonic() < deadline, "n2 never prepared"
        time.sleep(0.05)
    nodes["n2"].kill()
    request.join()

    # n4 comes up, n2 restarts (its pending change is prepared again), and the operator repeats
    # the request on n1, which finishes it.
    nodes["n4"] = nodes.start("n4", nodes.initial, "--join")
    nodes["n2"] = nodes.start("n2", nodes.initial)
    assert nodes["n2"].http("GET", "/v1/cluster")[1]["pendingEpoch"] == 2
    status, answer = admin(nodes["n1"], {"add": f"n4@127.0.0.1:{nodes.mesh['n4']}"})
    assert status == 200 and answer["epoch"] == 2, answer
    live = list(nodes.values())
    for n in live:
        wait_ready(n)
        assert n.http("GET", "/v1/cluster")[1]["epoch"] == 2
    for k in range(5):
        m = send_until_acked(live, gid, users[k % 6], f"after{k}", f"after {k}")
        acked[gid][m["seq"]] = m["body"]
    check_everything(live, users, conversations, acked)


def _ignore_errors(f):
    try:
        f()
    except OSError:
        pass


def test_email_state_moves_with_its_users_no_second_email_and_unsubscribes_kept(datadir):
    import glob
    import urllib.request
    from test_email import emails

    ns = Nodes.__new__(Nodes)
    dict.__init__(ns)
    ns.datadir = datadir
    ns.mesh, ns.http = node_ports(["n1", "n2", "n3", "n4"])
    ns.initial = ["n1", "n2", "n3"]
    short = ("--inactivity-after", "2s")
    for i in ns.initial:
        ns[i] = ns.start(i, ns.initial, *short)
    for n in ns.values():
        wait_ready(n)
    try:
        four = Ring(["n1", "n2", "n3", "n4"])
        movers = [n for n in (f"em{k}" for k in range(400)) if four.owner_of_username(n) == "n4"][:3]
        first = list(ns.values())
        mailed, quitter = first[0].user(movers[0]), first[1].user(movers[1])

        def all_emails(user):
            return [m for i in ns for m in emails(f"{datadir}/{i}", user["id"])]

        def wait_email(user, count, seconds=20):
            deadline = time.monotonic() + seconds
            while len(all_emails(user)) < count:
                assert time.monotonic() < deadline, f"{user['name']} never got email {count}"
                time.sleep(0.1)
            return all_emails(user)

        wait_email(mailed, 1)
        [q] = wait_email(quitter, 1)
        url = q["List-Unsubscribe"].strip("<>")
        assert urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b"List-Unsubscribe=One-Click"), timeout=10).status == 200

        ns["n4"] = ns.start("n4", ns.initial, "--join", *short)
        status, answer = admin(ns["n1"], {"add": f"n4@127.0.0.1:{ns.mesh['n4']}"})
        assert status == 200, answer
        # On n4 now: the quitter logs in again (a new period, but unsubscribed); a control user
        # registers there and gets its email, by which time the others' deadlines have passed.
        assert http_retry(ns["n2"], "POST", "/v1/sessions", None, {"username": movers[1], "password": "password1"})[0] == 201
        control = first[2].user(movers[2])
        wait_email(control, 1)
        assert glob.glob(f"{datadir}/n4/outbox/*{control['id']}*"), "the control's email came from n4"
        assert len(all_emails(mailed)) == 1, "no second email for the same period from the new owner"
        assert len(all_emails(quitter)) == 1, "the unsubscribe moved with its user"
    finally:
        for n in ns.values():
            if n.proc.poll() is None:
                n.stop()
