#!/usr/bin/env python3
"""How long a lost leader's partitions refuse writes (PROTOCOL.md section 7).

Starts a real etcd and three `chorus serve --etcd` nodes (`--lease 3s`), creates group
conversations through every node until most partitions have one, then takes n2 away:
- `--fault stop` (default): `SIGSTOP` for PAUSE seconds, then `SIGCONT` (it stops itself, exit 75);
- `--fault kill`: `kill -9`, restarted after RESTART seconds on the same data directory;
- `--fault wipe`: `kill -9`, data directory deleted, restarted empty after RESTART seconds.
From the fault on, one message per partition n2 led is sent through the other two nodes (1 s per
attempt, retried every 50 ms) until acknowledged; etcd is polled every 50 ms for the live nodes and
one of n2's partitions' entries. Prints each partition's outage, the etcd timeline, and whether
every acknowledged message is still there afterwards. After `kill` and `wipe`, one writer per
probed partition (a message every 20 ms, through every node in turn) runs while the partitions are
handed back to the restarted node (`--rebalance-after`, 10 s by default): the longest wait of each
is the hand-off's outage.

Usage: Benchmarks/scripts/replication_failover.py BIN [--fault stop|kill|wipe] [--pause 8] [--restart 1]
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "acceptance"))
os.environ.setdefault("CHORUS_BIN", "")
from test_replication import Etcd, Writer, partition_of  # noqa: E402
import replication_torture as torture  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--fault", choices=["stop", "kill", "wipe"], default="stop")
    ap.add_argument("--pause", type=float, default=8, help="how long the timeline is recorded")
    ap.add_argument("--restart", type=float, default=1, help="kill, wipe: seconds until the node is started again")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="chorus-failover-")
    etcd = Etcd()
    cluster = torture.Cluster(os.path.abspath(args.binary), 3, root, etcd)
    try:
        first = cluster.nodes["n1"]
        users = []
        for k in range(9):
            deadline = time.monotonic() + 60
            while first.http("POST", "/v1/users", {"username": f"user{k}", "password": "password1", "email": f"u{k}@x.com"})[0] not in (201, 409):
                assert time.monotonic() < deadline, "registration"
                time.sleep(0.2)
            status, s = first.http("POST", "/v1/sessions", {"username": f"user{k}", "password": "password1"})
            users.append((s["userId"], s["token"]))
        torture.until(cluster.healthy, 60)
        probes = []
        for k in range(48):
            node = cluster.nodes[cluster.ids[k % 3]]
            status, conv = node.http("POST", "/v1/conversations", {"members": [users[(k + 1) % 9][0], users[(k + 2) % 9][0]],
                                                                   "title": f"probe {k}"}, users[k % 9][1])
            if status == 201:
                probes.append(torture.Probe(conv["conversationId"], users[k % 9][1], f"p{k}"))
        victim = "n2"
        led = torture.leads(cluster, victim)
        chosen = list({partition_of(p.cid): p for p in probes if partition_of(p.cid) in led}.values())
        watched = f"/chorus/chorus/partitions/{partition_of(chosen[0].cid):02d}"
        events, t0 = [], time.monotonic()

        def poll():
            last = None
            while time.monotonic() - t0 < args.pause:
                now = (sorted(k.rsplit("/", 1)[1] for k in etcd.range("/chorus/chorus/nodes/")),
                       etcd.range(watched).get(watched))
                if now != last:
                    events.append((time.monotonic() - t0, now))
                    last = now
                time.sleep(0.05)

        if args.fault == "stop":
            cluster.nodes[victim].proc.send_signal(signal.SIGSTOP)
        else:
            cluster.nodes[victim].kill()
        t0 = time.monotonic()
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        waited = []
        threads = [threading.Thread(target=p.outage, args=(cluster, victim, t0, waited)) for p in chosen]
        for t in threads:
            t.start()
        if args.fault != "stop":
            if args.fault == "wipe":
                shutil.rmtree(f"{root}/{victim}")
            time.sleep(max(0.0, args.restart - (time.monotonic() - t0)))
            cluster.nodes[victim] = cluster.start(victim)
            events.append((time.monotonic() - t0, ("restarted", "")))
        for t in threads:
            t.join()
        poller.join()
        print(f"{victim} led {len(led)} partitions; probed {len(chosen)}; outage after {args.fault}: "
              f"min {min(waited):.2f} s, max {max(waited):.2f} s", flush=True)
        for at, (alive, entry) in sorted(events, key=lambda e: e[0]):
            print(f"  {at:5.2f} s: live nodes {alive}, {watched.rsplit('/', 1)[1]} = {entry!r}", flush=True)
        code = None
        handing = []
        if args.fault != "stop":
            handing = [Writer(cluster, p.cid, p.token, f"h{k}", timeout=2, pause=0.02) for k, p in enumerate(chosen)]
            torture.wait_ready(cluster.nodes[victim], 60)
            for w in handing:
                w.start()
            ready = time.monotonic()
            torture.until(lambda: all(leader == replicas[0] for _, leader, replicas in etcd.table().values()), 90)
            handed = time.monotonic() - ready
            time.sleep(1)
            for w in handing:
                w.stopping.set()
            for w in handing:
                w.join(timeout=60)
            waits = sorted(w.longest for w in handing)
            print(f"partitions led by their preferred replicas again {handed:.1f} s after {victim} was ready; longest write "
                  f"per partition meanwhile: p50 {waits[len(waits) // 2]:.3f} s, max {waits[-1]:.3f} s, "
                  f"{sum(len(w.acked) for w in handing)} acknowledged", flush=True)
        if args.fault == "stop":
            # A deposed leader stops itself (75); restarted, every probe's message is still there.
            cluster.nodes[victim].proc.send_signal(signal.SIGCONT)
            torture.until(lambda: cluster.nodes[victim].proc.poll() is not None, 30)
            code = cluster.nodes[victim].proc.returncode
            cluster.nodes[victim] = cluster.start(victim)
        torture.wait_ready(cluster.nodes[victim], 60)
        torture.until(cluster.healthy, 60)
        lost = torture.losses(probes + handing, [(p.cid, p.token) for p in probes + chosen], cluster.alive())
        print(f"{victim} exit status {code}; running again, acknowledged probe messages lost: {lost}", flush=True)
    finally:
        cluster.stop()
        etcd.stop()


if __name__ == "__main__":
    main()
