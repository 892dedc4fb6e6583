"""Membership changes of a replicated cluster (PROTOCOL.md section 7): three `chorus serve` nodes
with a real etcd; a fourth joins through `POST /v1/cluster/members` and partitions' replicas move to
it (widened, caught up, narrowed, one epoch per step) while writers go on; then a member retires the
same way and, once no partition names it, is stopped; then a fifth node joins, a member is killed
and removed while dead, and its replicas move to the others. Nothing acknowledged is lost or
repeated, in history or in any inbox."""
import pytest

from test_cluster import wait_ready
from test_replication import Etcd, ReplicatedCluster, assert_nothing_lost, start_writers, stop_writers, until, writes_go_on

TOKEN = "membership-admin-token-0123456789"


@pytest.fixture
def growing(datadir):
    etcd = Etcd()
    cluster = None
    try:
        cluster = ReplicatedCluster(datadir, etcd, extra=["--admin-token", TOKEN, "--rebalance-after", "2s"], spare=2)
        yield cluster
    finally:
        if cluster:
            cluster.stop()
        etcd.stop()


def settled(node):
    """The node's view: no partition's replicas still moving."""
    status, view = node.http("GET", "/v1/cluster")
    return status == 200 and view.get("movingReplicas") == 0


def named(etcd, node_id):
    return [p for p, (_, _, replicas) in etcd.table().items() if node_id in replicas]


def test_a_node_joins_and_another_retires_while_writes_go_on(growing):
    c = growing
    etcd = c.etcd
    until(lambda: len(etcd.table()) == 64 and settled(c.nodes["n1"]), 30, "the first table")
    users, conversations, writers = start_writers(c)

    # n4 starts outside the ring: etcd's members are n1-n3.
    c.nodes["n4"] = c.start("n4")
    wait_ready(c.nodes["n4"])
    assert named(etcd, "n4") == []
    status, body = c.nodes["n4"].http("POST", "/v1/cluster/members", {"add": f"n4@127.0.0.1:{c.mesh['n4']}"}, "wrong-token-0123456789")
    assert status == 401, body
    status, body = c.nodes["n1"].http("POST", "/v1/cluster/members", {"add": f"n4@127.0.0.1:{c.mesh['n4']}"}, TOKEN)
    assert status == 200, body
    assert sorted(m["nodeId"] for m in body["members"]) == ["n1", "n2", "n3", "n4"]
    status, body = c.nodes["n2"].http("POST", "/v1/cluster/members", {"add": f"n4@127.0.0.1:{c.mesh['n4']}"}, TOKEN)
    assert status == 400 and body["error"]["code"] == "bad_request", body
    until(lambda: all(settled(n) for n in c.alive()), 90, "replicas moved to the joined node")
    table = etcd.table()
    assert all(len(replicas) == 3 for _, _, replicas in table.values()), table
    assert named(etcd, "n4"), "n4 holds no replica"
    # Partitions that prefer n4 now are handed to it (--rebalance-after 2s).
    until(lambda: any(leader == "n4" for _, leader, _ in etcd.table().values()), 30, "n4 leads a partition")
    writes_go_on(writers, "writes after the join")

    # n1 retires: its replicas move away, then it can stop.
    status, body = c.nodes["n3"].http("POST", "/v1/cluster/members", {"remove": "n1"}, TOKEN)
    assert status == 200, body
    until(lambda: not named(etcd, "n1") and all(settled(n) for n in c.alive()), 90, "no partition names n1")
    writes_go_on(writers, "writes after the retirement")
    c.nodes["n1"].kill()
    writes_go_on(writers, "writes once n1 is stopped")
    # Three members stay (the replication factor): one more cannot leave.
    status, body = c.nodes["n2"].http("POST", "/v1/cluster/members", {"remove": "n2"}, TOKEN)
    assert status == 400 and body["error"]["code"] == "bad_request", body

    # n5 joins; then n2 dies and is removed while dead: its replicas move to the live members.
    c.nodes["n5"] = c.start("n5")
    wait_ready(c.nodes["n5"])
    status, body = c.nodes["n4"].http("POST", "/v1/cluster/members", {"add": f"n5@127.0.0.1:{c.mesh['n5']}"}, TOKEN)
    assert status == 200, body
    until(lambda: named(etcd, "n5") and all(settled(n) for n in c.alive()), 90, "replicas moved to n5")
    c.nodes["n2"].kill()
    writes_go_on(writers, "writes once n2 is killed")
    status, body = c.nodes["n3"].http("POST", "/v1/cluster/members", {"remove": "n2"}, TOKEN)
    assert status == 200, body
    until(lambda: not named(etcd, "n2") and all(settled(n) for n in c.alive()), 90, "no partition names the dead n2")
    writes_go_on(writers, "writes after n2's removal")
    stop_writers(writers)
    alive = [c.nodes["n3"], c.nodes["n4"], c.nodes["n5"]]
    assert_nothing_lost(alive, writers, conversations, users, "after joins, a retirement and a dead member's removal")
