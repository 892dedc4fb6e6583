#!/usr/bin/env python3
"""Torture run of a replicated cluster (PROTOCOL.md section 7; not part of CI).

Starts a local etcd and NODES `chorus serve --etcd` processes on loopback, keeps writers sending
to group and direct conversations (each message retried with its clientMsgId until acknowledged),
and runs CYCLES faults, one node at a time: `kill -9`, `kill -9` with its data directory deleted,
or `SIGSTOP` past the lease then `SIGCONT` (the node stops itself and is restarted). After each
cycle, once every node is back and no copy is rebuilding, the messages acknowledged since the
previous check (every 25th cycle: all of them) must be in the history of a random live node at
their seq with their messageId, gap-free; at the end, all of them through two nodes (a history is
read from its conversation's leader whichever node is asked), and every inbox must sync complete
and gap-free, holding every acknowledged message of its user's conversations once. Writers pause 10 ms between messages (about 100 messages/s each), so that the checks
stay short. Writers give a request 2 s before retrying on the next node (a
stopped node accepts connections but never answers). The outage of each fault is measured by
probes: for each partition the victim led, a message sent through the other nodes from the moment
of the fault (1 s per attempt) until acknowledged. Prints each cycle, then acknowledged messages,
losses, the longest wait for an ack per cycle and the outage (p50 and max, overall and per fault).

Usage: Benchmarks/scripts/replication_torture.py BIN [--nodes 5] [--cycles 100] [--seed S]
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "acceptance"))
os.environ.setdefault("CHORUS_BIN", "")
import conftest  # noqa: E402  (Server, the real binary as a client sees it)
from test_replication import Etcd, Writer, history, partition_of, sync_all  # noqa: E402
from test_cluster import free_ports, wait_ready  # noqa: E402

LEASE_S = 3


class Cluster:
    def __init__(self, binary, n, root, etcd):
        os.environ["CHORUS_BIN"] = binary
        self.ids = [f"n{i}" for i in range(1, n + 1)]
        ports = free_ports(2 * n)
        self.mesh, self.http_ports = dict(zip(self.ids, ports[:n])), dict(zip(self.ids, ports[n:]))
        self.root, self.etcd = root, etcd
        self.nodes = {i: self.start(i) for i in self.ids}
        for node in self.nodes.values():
            wait_ready(node, 60)

    def start(self, i):
        peers = [a for p in self.ids if p != i for a in ("--peer", f"{p}@127.0.0.1:{self.mesh[p]}")]
        return conftest.Server(f"{self.root}/{i}", "--node-id", i, "--mesh", f"127.0.0.1:{self.mesh[i]}", "--mesh-insecure", *peers,
                               "--etcd", self.etcd.url, "--lease", f"{LEASE_S}s", "--register-rate-limit", "off",
                               "--login-rate-limit", "off", "--user-send-rate-limit", "off", http=f"127.0.0.1:{self.http_ports[i]}")

    def alive(self):
        return [node for node in self.nodes.values() if node.proc.poll() is None]

    def stop(self):
        for node in self.alive():
            node.kill()

    def healthy(self):
        """Every node up, every partition led, no copy rebuilding."""
        if len(self.alive()) != len(self.ids):
            return False
        for node in self.alive():
            try:
                status, view = node.http("GET", "/v1/cluster")
            except OSError:
                return False
            if status != 200:
                return False
            me = next(x for x in view["nodes"] if x["nodeId"] == view["self"])
            if me.get("rebuilding"):
                return False
            if sum(len(x.get("leads", [])) for x in view["nodes"]) != 64:
                return False
        return True


def until(fn, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.2)
    return False


def losses(writers, conversations, nodes, since=None):
    """Acknowledged messages missing (or different) in the history of `nodes`, and seq gaps; with
    `since` ({tag: seq}), only the messages after each writer's seq there, which it then advances."""
    lost = 0
    for w, (cid, token) in zip(writers, conversations):
        acked = list(w.acked)
        after = since.get(w.tag, 0) if since is not None else 0
        for node in nodes:
            messages = history(node, cid, token, after)
            if messages is None:
                continue
            seqs = [m["seq"] for m in messages]
            if seqs != list(range(after + 1, after + len(seqs) + 1)):
                print(f"  {w.tag} on {node.base}: seq not gap-free after {after}", flush=True)
                lost += 1
            held = {m["seq"]: (m["messageId"], m["body"], m["clientMsgId"]) for m in messages}
            for seq, message_id, body, client_id in acked:
                if seq > after and held.get(seq) != (message_id, body, client_id):
                    lost += 1
        if acked and since is not None:
            since[w.tag] = max(after, max(seq for seq, _, _, _ in acked))
    return lost


class Probe:
    """A conversation written only to measure outages: one message per fault that hits its
    partition's leader, sent through the other nodes (1 s per attempt) from the moment of the fault
    until acknowledged."""

    def __init__(self, cid, token, tag):
        self.cid, self.token, self.tag, self.acked, self.sent = cid, token, tag, [], 0

    def outage(self, cluster, victim, t0, out):
        body = {"body": f"{self.tag} {self.sent}", "clientMsgId": f"{self.tag}-{self.sent}"}
        self.sent += 1
        attempt = 0
        while time.monotonic() - t0 < 120:
            others = [n for i, n in cluster.nodes.items() if i != victim and n.proc.poll() is None]
            attempt += 1
            if not others:  # every other node is restarting
                time.sleep(0.05)
                continue
            try:
                status, m = others[attempt % len(others)].http("POST", f"/v1/conversations/{self.cid}/messages", body, self.token, 1)
            except OSError:
                status = 0
            if status in (200, 201):
                self.acked.append((m["seq"], m["messageId"], m["body"], m["clientMsgId"]))
                out.append(time.monotonic() - t0)
                return
            time.sleep(0.05)
        out.append(float("inf"))


def leads(cluster, node_id):
    """The partitions `node_id` leads, as another live node's table has them."""
    for n in cluster.alive():
        if n is not cluster.nodes[node_id]:
            status, view = n.http("GET", "/v1/cluster", None, None, 2)
            if status == 200:
                return set(next((x.get("leads", []) for x in view["nodes"] if x["nodeId"] == node_id), []))
    return set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="chorus-torture-")
    etcd = Etcd()
    cluster = Cluster(os.path.abspath(args.binary), args.nodes, root, etcd)
    writers = []
    try:
        first = cluster.nodes["n1"]

        def call(method, path, body, token=None):
            # Until every partition has a leader, some keys answer 503.
            deadline = time.monotonic() + 60
            while True:
                status, answer = first.http(method, path, body, token)
                if status in (200, 201) or time.monotonic() > deadline:
                    return answer
                time.sleep(0.2)
        users = []
        for k in range(8):
            call("POST", "/v1/users", {"username": f"user{k}", "password": "password1", "email": f"u{k}@x.com"})
            s = call("POST", "/v1/sessions", {"username": f"user{k}", "password": "password1"})
            assert "userId" in s, s
            users.append((s["userId"], s["token"]))
        conversations = []
        members_of = {}
        for creator, members, title in [(0, [u for u, _ in users[1:]], "all"), (1, [users[2][0], users[3][0]], "some"),
                                        (0, [users[1][0]], None), (4, [users[5][0]], None), (6, [users[7][0]], None)]:
            conv = call("POST", "/v1/conversations", {"members": members, **({"title": title} if title else {})}, users[creator][1])
            conversations.append((conv["conversationId"], users[creator][1]))
            members_of[conv["conversationId"]] = {users[creator][0], *members}
        # Outage probes: groups created through every node, so that most partitions have one.
        probes = []
        for k in range(96):
            token = users[k % 8][1]
            node = cluster.nodes[cluster.ids[k % len(cluster.ids)]]
            status, conv = node.http("POST", "/v1/conversations", {"members": [users[(k + 1) % 8][0], users[(k + 2) % 8][0]], "title": f"probe {k}"}, token)
            if status == 201:
                probes.append(Probe(conv["conversationId"], token, f"p{k}"))
                members_of[conv["conversationId"]] = {users[k % 8][0], users[(k + 1) % 8][0], users[(k + 2) % 8][0]}
        covered = {partition_of(p.cid) for p in probes}
        print(f"{len(probes)} probe conversations cover {len(covered)} of 64 partitions", flush=True)
        writers = [Writer(cluster, cid, token, f"w{k}", timeout=2, pause=0.01) for k, (cid, token) in enumerate(conversations)]
        for w in writers:
            w.start()
        print(f"seed {args.seed}, {args.nodes} nodes, data under {root}", flush=True)
        waits, total_lost, since = {"kill": [], "wipe": [], "pause": []}, 0, {}
        outages = {"kill": [], "wipe": [], "pause": []}
        crashes, restarts = [0], [0]

        def supervise(cycle):
            """Restarts nodes that stopped on their own, as a supervisor would: 75 is a deposed
            leader's fail-stop; anything else is a crash."""
            for i, n in list(cluster.nodes.items()):
                if n.proc.poll() is not None:
                    restarts[0] += 1
                    if n.proc.returncode != 75:
                        crashes[0] += 1
                        tail = open(f"{root}/{i}.stderr.log", errors="replace").read().splitlines()
                        print(f"cycle {cycle}: {i} exited with {n.proc.returncode}: "
                              f"{next((l for l in tail if 'Fatal error' in l or 'critical' in l), tail[-1] if tail else '')[:300]}", flush=True)
                    cluster.nodes[i] = cluster.start(i)
                    try:
                        wait_ready(cluster.nodes[i], 60)
                    except (OSError, AssertionError):
                        pass  # it stopped again while starting (deposed): the next round restarts it

        for cycle in range(1, args.cycles + 1):
            for w in writers:
                w.longest = 0.0
            supervise(cycle)
            victim = rng.choice(cluster.ids)
            fault = rng.choice(["kill", "wipe", "pause"])
            node = cluster.nodes[victim]
            led = leads(cluster, victim)
            # One probe per partition the victim leads, each in its own thread from the fault on.
            chosen = {partition_of(p.cid): p for p in probes if partition_of(p.cid) in led}.values()
            started = time.monotonic()
            waited = []
            threads = [threading.Thread(target=p.outage, args=(cluster, victim, started, waited), daemon=True) for p in chosen]
            if fault == "pause":
                node.proc.send_signal(signal.SIGSTOP)
                for t in threads:
                    t.start()
                time.sleep(LEASE_S + 2)
                node.proc.send_signal(signal.SIGCONT)
                # A node that led partitions stops itself (exit 75); one that only followed goes on.
                if led:
                    until(lambda: node.proc.poll() is not None, 15)
            else:
                node.kill()
                for t in threads:
                    t.start()
                if fault == "wipe":
                    shutil.rmtree(f"{root}/{victim}")
                time.sleep(rng.uniform(1, 6))
            if node.proc.poll() is not None:
                cluster.nodes[victim] = cluster.start(victim)
                wait_ready(cluster.nodes[victim], 60)
            faulted = time.monotonic()
            if not until(lambda: supervise(cycle) or cluster.healthy(), 120):
                print(f"cycle {cycle}: {fault} {victim}: the cluster did not become healthy in 120 s", flush=True)
                for n in cluster.alive():
                    status, view = n.http("GET", "/v1/cluster")
                    if status == 200:
                        me = next(x for x in view["nodes"] if x["nodeId"] == view["self"])
                        print(f"  {view['self']}: rebuilding {me.get('rebuilding')}, leads "
                              f"{ {x['nodeId']: len(x.get('leads', [])) for x in view['nodes']} }", flush=True)
                break
            for t in threads:
                t.join()
            outage = max(waited, default=None)
            if outage is not None:
                outages[fault].append(outage)
            # Each cycle checks what was acknowledged since the last check; every tenth, everything.
            healed = time.monotonic()
            if cycle % 25 == 0:
                since = {w.tag: 0 for w in writers}  # a full check, which then counts as the last one
            lost = losses(writers, conversations, [rng.choice(cluster.alive())], since)
            total_lost += lost
            longest = max(w.longest for w in writers)
            waits[fault].append(longest)
            acked = sum(len(w.acked) for w in writers)
            shown = f"{outage:.2f} s over {len(waited)} partitions" if outage is not None else "no probe"
            print(f"cycle {cycle}: {fault} {victim}, {time.monotonic() - started:.1f} s (fault {faulted - started:.1f}, "
                  f"healthy {healed - faulted:.1f}, check {time.monotonic() - healed:.1f}), acked {acked}, "
                  f"longest wait {longest:.2f} s, outage {shown}, lost {lost}", flush=True)
        for w in writers:
            w.stopping.set()
        for w in writers:
            w.join(timeout=120)
        # Reads go to each conversation's leader whichever node is asked: two nodes check routing.
        total_lost += losses(writers + probes, conversations + [(p.cid, p.token) for p in probes], cluster.alive()[:2])
        # Entries for members other than the sender arrive after the ack: let the fan-out finish.
        time.sleep(5)
        gaps = 0
        # Every acknowledged message is in every member's inbox, once.
        acked_in = {}
        for w, (cid, _) in zip(writers + probes, conversations + [(p.cid, p.token) for p in probes]):
            acked_in.setdefault(cid, set()).update(seq for seq, *_ in w.acked)
        absent, twice = 0, 0
        for user, token in users:
            entries = asyncio.run(sync_all(cluster.alive()[0].ws_url(token)))
            seqs = sorted(e["inboxSeq"] for e in entries)
            if seqs != list(range(1, len(seqs) + 1)):
                gaps += 1
                missing = sorted(set(range(1, seqs[-1] + 1)) - set(seqs)) if seqs else []
                print(f"  {user}: {len(seqs)} entries, inboxSeq missing {missing[:10]}", flush=True)
            got = [(e["conversationId"], e["seq"]) for e in entries if e["type"] == "message"]
            twice += len(got) - len(set(got))
            wanted = {(cid, seq) for cid, seqs in acked_in.items() if user in members_of[cid] for seq in seqs}
            lacking = sorted(wanted - set(got))
            absent += len(lacking)
            if lacking:
                print(f"  {user}: inbox lacks {len(lacking)} acknowledged messages, e.g. {lacking[:5]}", flush=True)
        acked = sum(len(w.acked) for w in writers)
        every = [w for kind in waits.values() for w in kind]
        print(f"done: {len(every)} cycles, {acked} messages acknowledged, {total_lost} lost, inboxes with gaps {gaps}, "
              f"inbox entries missing {absent}, repeated {twice}, "
              f"restarts of nodes that stopped themselves {restarts[0]}, crashes {crashes[0]}; "
              f"longest wait per cycle p50 {statistics.median(every):.2f} s, max {max(every):.2f} s", flush=True)
        for kind, got in waits.items():
            if got:
                print(f"  {kind}: {len(got)} cycles, longest wait p50 {statistics.median(got):.2f} s, max {max(got):.2f} s", flush=True)
        every = [o for kind in outages.values() for o in kind]
        if every:
            print(f"outage of the victim's partitions (fault to first ack through another node): "
                  f"p50 {statistics.median(every):.2f} s, max {max(every):.2f} s over {len(every)} cycles", flush=True)
        for kind, got in outages.items():
            if got:
                print(f"  {kind}: {len(got)} cycles, outage p50 {statistics.median(got):.2f} s, max {max(got):.2f} s", flush=True)
    finally:
        for w in writers:
            w.stopping.set()
        cluster.stop()
        etcd.stop()


if __name__ == "__main__":
    main()
