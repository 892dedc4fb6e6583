"""Leadership goes back to each partition's preferred replica (PROTOCOL.md section 7): three
replicated `chorus serve` nodes with a real etcd and `--rebalance-after 2s`; a leader killed with
`kill -9` loses its partitions to the others and, restarted, gets them back by hand-offs, while
writers go on, without any node stopping and without losing or repeating anything acknowledged;
a session of a user whose partition is handed back is closed with 1012."""
import asyncio
import threading

import pytest
import websockets

from test_cluster import wait_ready
from test_replication import Etcd, ReplicatedCluster, partition_of, assert_nothing_lost, start_writers, stop_writers, until, writes_go_on


@pytest.fixture
def rebalancing(datadir):
    etcd = Etcd()
    cluster = None
    try:
        cluster = ReplicatedCluster(datadir, etcd, extra=["--rebalance-after", "2s"])
        yield cluster
    finally:
        if cluster:
            cluster.stop()
        etcd.stop()


def preferred_everywhere(table):
    return all(leader == replicas[0] for _, leader, replicas in table.values())


def close_code(url, out):
    """Holds a session open (reading whatever comes) until the server closes it; appends the code."""
    async def hold():
        async with websockets.connect(url) as ws:
            try:
                while True:
                    await ws.recv()
            except websockets.ConnectionClosed as closed:
                out.append(closed.rcvd.code if closed.rcvd else None)
    asyncio.run(hold())


def test_a_restarted_node_gets_its_partitions_back_by_hand_offs_and_nothing_is_lost(rebalancing):
    c = rebalancing
    etcd = c.etcd
    until(lambda: len(etcd.table()) == 64 and preferred_everywhere(etcd.table()), 30, "the first table, led by preferred replicas")
    users, conversations, writers = start_writers(c)

    c.nodes["n1"].kill()
    until(lambda: all(leader != "n1" for _, leader, _ in etcd.table().values()), 30, "n1's partitions taken over")
    moved = {p: epoch for p, (epoch, _, replicas) in etcd.table().items() if replicas[0] == "n1"}
    assert moved, "n1 is no partition's preferred replica"
    writes_go_on(writers, "writes while n1 is down")
    # A session of a user of a partition that goes back to n1, held on n3.
    mover = None
    for k in range(40):
        status, created = c.nodes["n2"].http("POST", "/v1/users", {"username": f"mover{k}", "password": "password1", "email": f"m{k}@example.com"})
        if status == 201 and partition_of(created["userId"]) in moved:
            mover = k
            break
    assert mover is not None, "no user of n1's partitions among 40"
    status, session = c.nodes["n2"].http("POST", "/v1/sessions", {"username": f"mover{mover}", "password": "password1"})
    assert status == 201, session
    closed = []
    holder = threading.Thread(target=close_code, args=(c.nodes["n3"].ws_url(session["token"]), closed), daemon=True)
    holder.start()

    pids = {i: c.nodes[i].proc.pid for i in ("n2", "n3")}
    c.nodes["n1"] = c.start("n1")
    wait_ready(c.nodes["n1"])
    # Each of n1's partitions is handed back, one at a time per node, in a new epoch.
    until(lambda: preferred_everywhere(etcd.table()), 60, "every partition led by its preferred replica again")
    table = etcd.table()
    assert all(table[p][0] > epoch for p, epoch in moved.items()), "a hand-off is a new epoch"
    writes_go_on(writers, "writes after the hand-offs")
    holder.join(timeout=30)
    assert closed == [1012], closed
    stop_writers(writers)
    for i, pid in pids.items():
        assert c.nodes[i].proc.poll() is None and c.nodes[i].proc.pid == pid, f"{i} stopped: a hand-off must not stop the node"
    assert_nothing_lost(c.alive(), writers, conversations, users, "after hand-offs back to n1")
    # The nodes that handed off say so in their logs.
    logs = "".join(open(c.nodes[i].data + ".stderr.log", errors="replace").read() for i in ("n2", "n3"))
    handed = [line for line in logs.splitlines() if "handed off" in line]
    assert len(handed) >= len(moved), handed
    print(f"{len(handed)} hand-offs; e.g. {handed[0][-200:]}")
