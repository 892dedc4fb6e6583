"""Three real `chorus serve` processes on 127.0.0.1 forming one cluster:
accounts, tokens and WebSockets work whichever node a client reaches."""
import asyncio
import json
import socket
import time

import pytest
import websockets

from conftest import Server, mesh_security


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def node_ports(ids):
    """Mesh and HTTP ports for `ids`, reserved together: a node left to bind HTTP on port 0 could
    take another node's mesh port before that node starts (which then exits: "mesh could not listen")."""
    ports = free_ports(2 * len(ids))
    return dict(zip(ids, ports[:len(ids)])), dict(zip(ids, ports[len(ids):]))


def until_equal(fetch, want, seconds=20):
    """Calls `fetch` (an async function) until it returns `want` or `seconds` pass; returns the
    last answer. For state other nodes reach by themselves (retries, reconnects): a WebSocket
    refused with 503 meanwhile counts as not yet."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            got = asyncio.run(fetch())
        except websockets.InvalidStatus:
            got = None
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def wait_ready(node, seconds=20):
    """Polls /readyz: a node is ready once its log is recovered and it has joined the mesh."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if node.http("GET", "/readyz")[0] == 200:
            return
        time.sleep(0.05)
    raise AssertionError("node never became ready")


class Cluster(list):
    """Three nodes; `restart(i)` starts node i again on its data directory and mesh port."""

    def __init__(self, datadir):
        super().__init__()
        self.ids = ["n1", "n2", "n3"]
        self.mesh, self.http = node_ports(self.ids)
        self.datadir = datadir
        for i in self.ids:
            self.append(self.start(i))
        for n in self:
            wait_ready(n)

    def start(self, i):
        peers = [a for p in self.ids if p != i for a in ("--peer", f"{p}@127.0.0.1:{self.mesh[p]}")]
        return Server(f"{self.datadir}/{i}", "--node-id", i, "--mesh", f"127.0.0.1:{self.mesh[i]}", *mesh_security(i), *peers,
                      http=f"127.0.0.1:{self.http[i]}")

    def restart(self, k):
        self[k] = self.start(self.ids[k])
        wait_ready(self[k])


@pytest.fixture
def cluster(datadir):
    nodes = Cluster(datadir)
    yield nodes
    for n in nodes:
        if n.proc.poll() is None:
            n.stop()


def test_cluster_view_lists_every_node_alive_with_its_client_address(cluster):
    import urllib.request
    for k, n in enumerate(cluster):
        status, view = n.http("GET", "/v1/cluster")
        assert status == 200
        assert view["nodes"] == [
            {"nodeId": f"n{i + 1}", "address": cluster[i].base, "status": "alive"} for i in range(3)
        ]
        # The same in metrics: one gauge per peer, 0 = alive.
        text = urllib.request.urlopen(f"http://{n.base}/metrics", timeout=10).read().decode()
        for peer in (p for p in cluster.ids if p != cluster.ids[k]):
            assert f'chorus_mesh_peer_status{{peer="{peer}"}} 0' in text, text[:2000]
        assert "\nchorus_fanout_queued 0" in text and "\nchorus_fanout_dropped 0" in text


def test_register_login_and_logout_work_on_any_node(cluster):
    users = []
    for k in range(9):
        entry, login, other = cluster[k % 3], cluster[(k + 1) % 3], cluster[(k + 2) % 3]
        name = f"member{k}"
        status, created = entry.http("POST", "/v1/users", {"username": name, "password": "password1", "email": f"{name}@example.com"})
        assert status == 201, created
        # A username is unique across the cluster, whichever node is asked.
        assert other.http("POST", "/v1/users", {"username": name, "password": "password2", "email": f"x{name}@example.com"})[1]["error"]["code"] == "username_taken"
        status, session = login.http("POST", "/v1/sessions", {"username": name, "password": "password1"})
        assert status == 201 and session["userId"] == created["userId"]
        users.append((created["userId"], session["token"]))
    for user_id, token in users:
        for n in cluster:
            status, me = n.http("GET", "/v1/me", token=token)
            assert status == 200 and me["userId"] == user_id
    # Looking a user up by name works from any node, for a token of any node's user.
    assert cluster[2].http("GET", "/v1/users?username=member4", token=users[0][1])[1]["userId"] == users[4][0]
    # And by id, answered by the user's owner whichever node is asked.
    for n in cluster:
        status, found = n.http("GET", f"/v1/users?userId={users[4][0]}", token=users[1][1])
        assert status == 200 and found["username"] == "member4", found
    # Logout on one node: the token is refused on every node at once.
    assert cluster[1].http("DELETE", "/v1/sessions/current", token=users[0][1])[0] == 204
    for n in cluster:
        assert n.http("GET", "/v1/me", token=users[0][1])[0] == 401
        assert n.http("GET", "/v1/me", token=users[1][1])[0] == 200


async def frames_until(ws, predicate, seconds=10):
    got = []
    async with asyncio.timeout(seconds):
        while True:
            f = json.loads(await ws.recv())
            got.append(f)
            if predicate(f):
                return got


async def synced_from_zero(node, user):
    """A fresh session's `sync` from 0 through `node`: every frame up to `synced`."""
    async with websockets.connect(node.ws_url(user["token"])) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "sync", "after": 0}))
        return await frames_until(ws, lambda f: f["type"] == "synced")


def test_websockets_on_every_node_reach_the_users_owner(cluster):
    users = [cluster[k % 3].user(f"ws{k}") for k in range(2)]
    status, conv = cluster[0].http("POST", "/v1/conversations", {"members": [users[1]["id"]]}, token=users[0]["token"])
    assert status == 201, conv
    pair = (users[0], users[1], conv["conversationId"])
    alice, bob, conversation = pair

    async def run():
        # Alice and Bob each hold a session on every node: at least two of each are relayed.
        alice_ws = [await websockets.connect(n.ws_url(alice["token"])) for n in cluster]
        bob_ws = [await websockets.connect(n.ws_url(bob["token"])) for n in cluster]
        for ws, who in [(w, alice) for w in alice_ws] + [(w, bob) for w in bob_ws]:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello" and hello["userId"] == who["id"]
            await ws.send(json.dumps({"type": "ping"}))
            assert (await frames_until(ws, lambda f: f["type"] == "pong"))[-1]["type"] == "pong"
        sender = alice_ws[1]
        await sender.send(json.dumps({"type": "send", "clientMsgId": "m1", "conversationId": conversation, "body": "hello across nodes"}))
        ack = (await frames_until(sender, lambda f: f["type"] == "ack"))[-1]
        assert ack["seq"] == 1
        for ws in bob_ws + [alice_ws[0], alice_ws[2]]:
            msg = (await frames_until(ws, lambda f: f["type"] == "message"))[-1]
            assert msg["body"] == "hello across nodes" and msg["seq"] == 1 and msg["from"] == alice["id"]
        # A bad frame is refused by the owner's rules and answered through the relay.
        await bob_ws[2].send("not json")
        err = (await frames_until(bob_ws[2], lambda f: f["type"] == "error"))[-1]
        assert err["code"] == "bad_frame"
        # A later session, on each node, gets the message by sync (through a relay for two of them).
        for n in cluster:
            async with websockets.connect(n.ws_url(bob["token"])) as late:
                assert json.loads(await late.recv())["inboxSeq"] == 1
                await late.send(json.dumps({"type": "sync", "after": 0}))
                got = await frames_until(late, lambda f: f["type"] == "synced")
                assert [(f["seq"], f["body"]) for f in got if f["type"] == "message"] == [(1, "hello across nodes")]
        for ws in alice_ws + bob_ws:
            await ws.close()

    asyncio.run(run())


async def closed_with(sockets, code):
    """Reads each socket until the server closes it, and checks the close code it sent."""
    for ws in sockets:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        assert closed.value.rcvd.code == code


def test_a_revoked_token_closes_relayed_sessions_with_4001(cluster):
    user = cluster[0].user("revokee")

    async def run():
        sockets = [await websockets.connect(n.ws_url(user["token"])) for n in cluster]
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "hello"
        assert cluster[2].http("DELETE", "/v1/sessions/current", token=user["token"])[0] == 204
        await closed_with(sockets, 4001)

    asyncio.run(run())


def test_logging_out_everywhere_closes_every_session_on_every_node(cluster):
    user = cluster[0].user("leaver")
    status, other = cluster[1].http("POST", "/v1/sessions", {"username": "leaver", "password": "password1"})
    assert status == 201

    async def run():
        sockets = [await websockets.connect(n.ws_url(t)) for n in cluster for t in (user["token"], other["token"])]
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "hello"
        assert cluster[2].http("DELETE", "/v1/sessions", token=other["token"])[0] == 204
        await closed_with(sockets, 4001)

    asyncio.run(run())
    for n in cluster:
        assert n.http("GET", "/v1/me", token=user["token"])[0] == 401


def test_framing_limits_hold_on_relayed_sessions_too(cluster):
    """On every node (two of them relay the user's session to its owner): a WebSocket ping is
    answered, an oversized message closes with 1009, an unmasked frame with 1002."""
    from test_websocket import RawClient
    user = cluster[0].user("framer")

    async def oversized(node):
        async with websockets.connect(node.ws_url(user["token"])) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.send("x" * 70_000)
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
            return closed.value.rcvd.code

    for node in cluster:
        c = RawClient(node, user["token"])
        assert c.json()["type"] == "hello"
        c.send(0x9, b"still there?")
        assert c.frame() == (0xA, b"still there?")
        c.send(0x1, b'{"type":"ping"}', mask=False)
        op, payload = c.frame()
        assert op == 0x8 and int.from_bytes(payload[:2], "big") == 1002, (node.base, payload)
        assert asyncio.run(oversized(node)) == 1009, node.base


def test_chat_across_nodes_both_ways_with_history_sync_and_lists(cluster):
    # Users registered on every node: pairs across owners and within one, a group over all three.
    users = [cluster[k % 3].user(f"cross{k}") for k in range(6)]
    a, b = users[0], users[1]

    async def run():
        # a on node 3, b on node 2 (whoever owns them): a direct conversation by "to".
        ws_a = await websockets.connect(cluster[2].ws_url(a["token"]))
        ws_b = await websockets.connect(cluster[1].ws_url(b["token"]))
        assert json.loads(await ws_a.recv())["type"] == "hello"
        assert json.loads(await ws_b.recv())["type"] == "hello"
        await ws_a.send(json.dumps({"type": "send", "clientMsgId": "a1", "to": b["id"], "body": "hi b"}))
        ack = (await frames_until(ws_a, lambda f: f["type"] == "ack"))[-1]
        conv = ack["conversationId"]
        assert ack["seq"] == 1 and ack["inboxSeq"] == 1
        got = (await frames_until(ws_b, lambda f: f["type"] == "message"))[-1]
        assert (got["body"], got["seq"], got["inboxSeq"], got["from"]) == ("hi b", 1, 1, a["id"])
        # And back, naming the conversation; then a repeat of a1 is answered from the dedup window.
        await ws_b.send(json.dumps({"type": "send", "clientMsgId": "b1", "conversationId": conv, "body": "hi a"}))
        assert (await frames_until(ws_b, lambda f: f["type"] == "ack"))[-1]["seq"] == 2
        got = (await frames_until(ws_a, lambda f: f["type"] == "message"))[-1]
        assert (got["body"], got["seq"], got["inboxSeq"]) == ("hi a", 2, 2)
        await ws_a.send(json.dumps({"type": "send", "clientMsgId": "a1", "conversationId": conv, "body": "hi b"}))
        assert (await frames_until(ws_a, lambda f: f["type"] == "ack"))[-1]["seq"] == 1
        await ws_a.close()
        await ws_b.close()
        return conv

    conv = asyncio.run(run())
    # History from any node, through any token's owner.
    for n in cluster:
        status, page = n.http("GET", f"/v1/conversations/{conv}/messages", token=b["token"])
        assert status == 200, page
        assert [(m["seq"], m["body"]) for m in page["messages"]] == [(1, "hi b"), (2, "hi a")]
    # A group over six users on three nodes: every member gets it, live or by sync.
    status, group = cluster[0].http("POST", "/v1/conversations", {"members": [u["id"] for u in users[1:]], "title": "all"}, token=users[0]["token"])
    assert status == 201, group
    gid = group["conversationId"]
    status, sent = cluster[1].http("POST", f"/v1/conversations/{gid}/messages", {"clientMsgId": "g1", "body": "hello group"}, token=users[3]["token"])
    assert status == 201 and sent["seq"] == 1, sent

    async def sync_all():
        for k, u in enumerate(users):
            async with websockets.connect(cluster[(k + 1) % 3].ws_url(u["token"])) as ws:
                hello = json.loads(await ws.recv())
                await ws.send(json.dumps({"type": "sync", "after": 0}))
                got = await frames_until(ws, lambda f: f["type"] == "synced")
                bodies = [f["body"] for f in got if f["type"] == "message"]
                assert bodies[-1] == "hello group", (u["name"], bodies)
                seqs = [f["inboxSeq"] for f in got if f["type"] == "message"]
                assert seqs == list(range(1, hello["inboxSeq"] + 1)), (u["name"], seqs)

    asyncio.run(sync_all())
    # Each user's list names every conversation it is in, whichever node holds it.
    for n in cluster:
        status, listed = n.http("GET", "/v1/conversations", token=a["token"])
        assert status == 200
        assert sorted(c["conversationId"] for c in listed["conversations"]) == sorted([conv, gid])


def send_until_acked(cluster, conversation, user, client_msg_id, body, seconds=30):
    """Sends over HTTP through every node in turn until one answers with the message (201 or a
    repeat's 200): a node that is down, or whose owner is, answers 503 or not at all."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for n in cluster:
            if n.proc.poll() is not None:
                continue
            try:
                status, m = n.http("POST", f"/v1/conversations/{conversation}/messages", {"clientMsgId": client_msg_id, "body": body}, token=user["token"])
            except OSError:
                continue
            if status in (200, 201):
                return m
            assert status == 503, m
        time.sleep(0.2)
    raise AssertionError(f"{client_msg_id} never acknowledged")


def test_sigkill_of_a_node_loses_nothing_acknowledged(cluster):
    users = [cluster[k % 3].user(f"kill{k}") for k in range(6)]
    status, group = cluster[0].http("POST", "/v1/conversations", {"members": [u["id"] for u in users[1:]]}, token=users[0]["token"])
    assert status == 201
    gid = group["conversationId"]
    acked = {}
    for k in range(20):
        m = send_until_acked(cluster, gid, users[k % 6], f"before{k}", f"before {k}")
        acked[m["seq"]] = m["body"]
    cluster[2].kill()
    # Meanwhile: sends keep being tried; those that are acknowledged must survive too.
    for k in range(10):
        u = users[k % 6]
        for n in cluster[:2]:
            status, m = n.http("POST", f"/v1/conversations/{gid}/messages", {"clientMsgId": f"during{k}", "body": f"during {k}"}, token=u["token"])
            if status in (200, 201):
                acked[m["seq"]] = m["body"]
                break
    cluster.restart(2)
    # Every send that was refused goes again with its id, now that every node is back.
    for k in range(10):
        m = send_until_acked(cluster, gid, users[k % 6], f"during{k}", f"during {k}")
        acked[m["seq"]] = m["body"]
    assert sorted(acked) == list(range(1, 31)), "seq rises by exactly one, each message once"

    # History from every node, and every member's inbox by sync: all 30, once each, in order.
    # (Right after the restart a peer may still be reconnecting: 503, then the answer.)
    for n in cluster:
        deadline = time.monotonic() + 10
        while True:
            status, page = n.http("GET", f"/v1/conversations/{gid}/messages?limit=100", token=users[1]["token"])
            if status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200, page
        assert [(m["seq"], m["body"]) for m in page["messages"]] == sorted(acked.items())

    async def sync_all():
        for k, u in enumerate(users):
            async with websockets.connect(cluster[k % 3].ws_url(u["token"])) as ws:
                hello = json.loads(await ws.recv())
                await ws.send(json.dumps({"type": "sync", "after": 0}))
                got = await frames_until(ws, lambda f: f["type"] == "synced", seconds=20)
                messages = [(f["seq"], f["body"]) for f in got if f["type"] == "message" and f["conversationId"] == gid]
                assert messages == sorted(acked.items()), (u["name"], messages)

    # The fan-out to the restarted node's users retries until it is back: give it its backoff
    # (a connection refused meanwhile with 503 is tried again too).
    deadline = time.monotonic() + 20
    while True:
        try:
            asyncio.run(sync_all())
            break
        except (AssertionError, websockets.InvalidStatus):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_presence_typing_and_receipts_across_nodes(cluster):
    from ring import Ring
    ring = Ring(cluster.ids)
    # a is owned by n1 and connects through n3; b is owned by n2 and connects through n1.
    name_a = next(f"pa{k}" for k in range(1000) if ring.owner_of_username(f"pa{k}") == "n1")
    name_b = next(f"pb{k}" for k in range(1000) if ring.owner_of_username(f"pb{k}") == "n2")
    a, b = cluster[1].user(name_a), cluster[2].user(name_b)
    assert ring.owner(a["id"]) == "n1" and ring.owner(b["id"]) == "n2", "user ids are minted on their username's owner"
    # Presence is shown to those who share a conversation (wherever it lives); c shares none with a.
    assert cluster[0].http("POST", "/v1/conversations", {"members": [b["id"]]}, token=a["token"])[0] == 201
    c = cluster[0].user(next(f"pc{k}" for k in range(1000) if ring.owner_of_username(f"pc{k}") == "n3"))
    status, hidden = cluster[1].http("GET", f"/v1/presence?userIds={c['id']}", token=a["token"])
    assert status == 200 and hidden["presence"] == [{"userId": c["id"], "status": "unknown"}]

    async def run():
        ws_a = await websockets.connect(cluster[2].ws_url(a["token"]))
        assert json.loads(await ws_a.recv())["type"] == "hello"
        await ws_a.send(json.dumps({"type": "watch", "userIds": [b["id"]]}))
        first = (await frames_until(ws_a, lambda f: f["type"] == "presence"))[-1]
        assert (first["userId"], first["status"]) == (b["id"], "offline")
        ws_b = await websockets.connect(cluster[0].ws_url(b["token"]))
        assert json.loads(await ws_b.recv())["type"] == "hello"
        online = (await frames_until(ws_a, lambda f: f["type"] == "presence"))[-1]
        assert (online["userId"], online["status"]) == (b["id"], "online")
        status, listed = cluster[1].http("GET", f"/v1/presence?userIds={b['id']}", token=a["token"])
        assert status == 200 and listed["presence"][0]["status"] == "online"

        await ws_a.send(json.dumps({"type": "send", "clientMsgId": "p1", "to": b["id"], "body": "are you there"}))
        ack = (await frames_until(ws_a, lambda f: f["type"] == "ack"))[-1]
        conv = ack["conversationId"]
        msg = (await frames_until(ws_b, lambda f: f["type"] == "message"))[-1]
        await ws_b.send(json.dumps({"type": "typing", "conversationId": conv}))
        typing = (await frames_until(ws_a, lambda f: f["type"] == "typing"))[-1]
        assert (typing["conversationId"], typing["userId"]) == (conv, b["id"])
        # Someone else typing there is refused as on one node, whichever node holds what.
        for k, n in enumerate(cluster):
            outsider = n.user(f"outsider{k}")
            async with websockets.connect(cluster[(k + 1) % 3].ws_url(outsider["token"])) as ws_o:
                assert json.loads(await ws_o.recv())["type"] == "hello"
                await ws_o.send(json.dumps({"type": "typing", "conversationId": conv}))
                assert (await frames_until(ws_o, lambda f: f["type"] == "error"))[-1]["code"] == "not_member"
                await ws_o.send(json.dumps({"type": "typing", "conversationId": "c_nosuchthing12"}))
                assert (await frames_until(ws_o, lambda f: f["type"] == "error"))[-1]["code"] == "unknown_conversation"
        # b holds the entry, then reads: a gets a delivered and a read receipt, as inbox entries.
        await ws_b.send(json.dumps({"type": "received", "upTo": msg["inboxSeq"]}))
        delivered = (await frames_until(ws_a, lambda f: f["type"] == "receipt"))[-1]
        assert (delivered["kind"], delivered["userId"], delivered["seq"], delivered["inboxSeq"]) == ("delivered", b["id"], 1, 2)
        await ws_b.send(json.dumps({"type": "read", "conversationId": conv, "seq": 1}))
        read = (await frames_until(ws_a, lambda f: f["type"] == "receipt"))[-1]
        assert (read["kind"], read["userId"], read["seq"], read["inboxSeq"]) == ("read", b["id"], 1, 3)

        await ws_b.close()
        offline = (await frames_until(ws_a, lambda f: f["type"] == "presence"))[-1]
        assert (offline["userId"], offline["status"]) == (b["id"], "offline")
        await ws_a.close()

    asyncio.run(run())


def test_entries_queued_for_a_down_node_survive_a_restart_of_the_conversations_node(cluster):
    from ring import Ring
    ring = Ring(cluster.ids)
    name_s = next(f"rs{k}" for k in range(1000) if ring.owner_of_username(f"rs{k}") == "n1")
    name_m = next(f"rm{k}" for k in range(1000) if ring.owner_of_username(f"rm{k}") == "n3")
    name_o = next(f"ro{k}" for k in range(1000) if ring.owner_of_username(f"ro{k}") == "n2")
    sender, member, other = cluster[0].user(name_s), cluster[2].user(name_m), cluster[1].user(name_o)
    # The group lives on n1 (its creator's node); the member's inbox on n3.
    status, group = cluster[0].http("POST", "/v1/conversations", {"members": [member["id"], other["id"]]}, token=sender["token"])
    assert status == 201 and ring.owner(group["conversationId"]) == "n1"
    gid = group["conversationId"]
    cluster[2].kill()
    for k in range(5):
        status, m = cluster[0].http("POST", f"/v1/conversations/{gid}/messages", {"clientMsgId": f"q{k}", "body": f"queued {k}"}, token=sender["token"])
        assert status == 201 and m["seq"] == k + 1
    # The other member reads up to 5: the read receipt for the member is queued on n1 too.
    async def read():
        async with websockets.connect(cluster[1].ws_url(other["token"])) as ws:
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "read", "conversationId": gid, "seq": 5}))
            # Logged once the conversation reports nothing unread for this member.
            deadline = time.monotonic() + 10
            while cluster[0].http("GET", f"/v1/conversations/{gid}", token=other["token"])[1]["unread"] != 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    asyncio.run(read())
    # n1 dies with the member's entries still in its (in-memory) queue; both come back.
    cluster[0].kill()
    cluster.restart(0)
    cluster.restart(2)

    async def member_sync():
        got = await synced_from_zero(cluster[1], member)
        return ([f["body"] for f in got if f["type"] == "message"],
                sorted((f["kind"], f["userId"], f["seq"]) for f in got if f["type"] == "receipt"))

    # Reconciled receipts name every other member's read position, the sender's too (sending
    # counts as reading), where the live path would have sent only the explicit read's.
    want = ([f"queued {k}" for k in range(5)], sorted([("read", other["id"], 5), ("read", sender["id"], 5)]))
    assert until_equal(member_sync, want) == want


def test_a_delivered_receipt_queued_for_a_down_node_survives_a_restart_of_the_claimants_node(cluster):
    import urllib.request
    from ring import Ring
    ring = Ring(cluster.ids)
    name_s = next(f"ds{k}" for k in range(1000) if ring.owner_of_username(f"ds{k}") == "n1")
    name_m = next(f"dm{k}" for k in range(1000) if ring.owner_of_username(f"dm{k}") == "n2")
    name_t = next(f"dt{k}" for k in range(1000) if ring.owner_of_username(f"dt{k}") == "n3")
    sender, member, third = cluster[0].user(name_s), cluster[1].user(name_m), cluster[2].user(name_t)
    # A group the member creates: it lives on n2, which stays up while the sender's node is down.
    status, conv = cluster[2].http("POST", "/v1/conversations", {"members": [sender["id"], third["id"]]}, token=member["token"])
    assert status == 201 and ring.owner(conv["conversationId"]) == "n2"
    cid = conv["conversationId"]
    for k in range(3):
        send_until_acked(cluster, cid, sender, f"d{k}", f"delivered {k}")
    cluster[0].kill()  # the sender's node: its delivered receipt waits in n2's queue

    def queued_on_n2():
        text = urllib.request.urlopen(f"http://{cluster[1].base}/metrics", timeout=10).read().decode()
        return next(float(line.split()[1]) for line in text.splitlines() if line.startswith("chorus_fanout_queued "))

    async def claim():
        async with websockets.connect(cluster[1].ws_url(member["token"])) as ws:
            hello = json.loads(await ws.recv())
            assert hello["inboxSeq"] == 3
            await ws.send(json.dumps({"type": "received", "upTo": 3}))
            deadline = time.monotonic() + 10
            while queued_on_n2() < 1:
                assert time.monotonic() < deadline, "the receipt was never queued"
                await asyncio.sleep(0.05)
    asyncio.run(claim())
    # n2 dies with the receipt only in its memory; both come back.
    cluster[1].kill()
    cluster.restart(0)
    cluster.restart(1)

    async def sender_receipts():
        got = await synced_from_zero(cluster[2], sender)
        return sorted((f["kind"], f["userId"], f["seq"]) for f in got if f["type"] == "receipt")

    want = [("delivered", member["id"], 3)]
    assert until_equal(sender_receipts, want) == want


def test_a_mesh_port_in_use_stops_the_node_with_the_reason(datadir):
    import subprocess
    from conftest import chorus_binary
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        p = subprocess.run([chorus_binary(), "serve", "--http", "127.0.0.1:0", "--data", datadir + "/d",
                            "--node-id", "n1", "--mesh", f"127.0.0.1:{port}", *mesh_security("n1"), "--peer", f"n2@127.0.0.1:{free_ports(1)[0]}"],
                           capture_output=True, timeout=30)
    finally:
        taken.close()
    assert p.returncode == 1
    assert "mesh could not listen" in p.stderr.decode() and f"127.0.0.1:{port}" in p.stderr.decode(), p.stderr.decode()


@pytest.mark.parametrize("args, says", [
    (["--peer", "n2@127.0.0.1:9000"], "--peer: needs --mesh"),
    (["--mesh", "127.0.0.1:0", "--mesh-insecure"], "--mesh"),
    (["--node-id", "n1", "--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "n1@127.0.0.1:9002"], "is this node"),
    (["--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "n2@127.0.0.1:9002", "--peer", "n2@127.0.0.1:9003"], "named twice"),
    (["--mesh", "127.0.0.1:9001", "--mesh-insecure", "--peer", "justahost:9002"], "--peer"),
])
def test_bad_cluster_options_exit_2_with_the_reason(datadir, args, says):
    import subprocess
    from conftest import chorus_binary
    p = subprocess.run([chorus_binary(), "serve", "--data", datadir + "/d", *args], capture_output=True, timeout=30)
    assert p.returncode == 2
    assert says in p.stderr.decode(), p.stderr.decode()


def test_one_send_bucket_per_user_on_every_node(cluster):
    """PROTOCOL.md section 6: a user's HTTP sends share one bucket whichever node they reach
    (default 20/s, burst 100). Three separate buckets would let about 300 through at once."""
    import threading
    import urllib.error
    import urllib.request
    ann, bob = cluster[0].user("ann"), cluster[1].user("bob")
    status, group = cluster[2].http("POST", "/v1/conversations", {"members": [bob["id"]], "title": "g"}, token=ann["token"])
    assert status == 201
    cid = group["conversationId"]
    statuses, lock = [], threading.Lock()

    def sender(node, start):
        for i in range(start, 150, 3):
            req = urllib.request.Request(f"http://{node.base}/v1/conversations/{cid}/messages", method="POST",
                                         data=json.dumps({"clientMsgId": f"m{i}", "body": "x"}).encode())
            req.add_header("Authorization", f"Bearer {ann['token']}")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    code = r.status
            except urllib.error.HTTPError as e:
                code = e.code
            with lock:
                statuses.append(code)

    began = time.monotonic()
    threads = [threading.Thread(target=sender, args=(node, k)) for k, node in enumerate(cluster)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    accepted, limited = statuses.count(201), statuses.count(429)
    assert accepted + limited == 150, statuses
    assert 100 <= accepted <= 100 + 20 * elapsed + 1, (accepted, elapsed)
    assert limited > 0


def test_the_session_cap_holds_across_nodes_with_429(cluster):
    """--max-sessions-per-user (default 20) counts on the user's owner, whichever node relays: the
    21st upgrade gets 429 on any node."""
    user = cluster[0].user("busy")

    async def run():
        sockets = [await websockets.connect(cluster[k % 3].ws_url(user["token"])) for k in range(20)]
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "hello"
        for node in cluster:
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(node.ws_url(user["token"]))
            assert refused.value.response.status_code == 429
        for ws in sockets:
            await ws.close()

    asyncio.run(run())
