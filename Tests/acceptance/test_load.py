"""`chorus load` against the real server: every message it sends is acknowledged and delivered to its
peer once and in order, in both loop modes, and the server counts the same messages."""
import json
import subprocess

import pytest

from conftest import Server, chorus_binary


def run_load(server, *args):
    out = subprocess.run(
        [chorus_binary(), "load", "--target", server.base, "--connections", "20", "--duration", "2",
         "--warmup", "0.5", "--drain", "10", "--event-loops", "1", *args],
        capture_output=True, timeout=120, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("mode", [["--rate", "400"], ["--rate", "0", "--window", "4"]], ids=["open", "closed"])
def test_load_generator_counts_every_message_once(datadir, mode):
    server = Server(datadir + "/data", "--login-rate-limit", "off", "--register-rate-limit", "off", "--user-send-rate-limit", "off", "--session-rate-limit", "1000:3000")
    try:
        before = server.counter("chorus_messages_accepted_total")
        report = run_load(server, *mode)
        assert report["connected"] == 20
        assert report["sent"] > 0
        assert report["acked"] == report["sent"], report
        assert report["refused"] == {} and report["unacked"] == 0
        assert report["delivered"] == report["acked"]
        assert report["lost"] == 0 and report["duplicates"] == 0 and report["outOfOrder"] == 0
        assert report["closedByServer"] == 0
        assert report["ackLatencyMs"]["count"] > 0 and report["endToEndLatencyMs"]["count"] > 0
        if mode[1] == "400":  # 400/s for 2 s, a message every 50 ms per connection
            assert abs(report["sent"] - 800) <= 20
        assert server.counter("chorus_messages_accepted_total") - before == report["acked"]
    finally:
        server.stop()


def test_load_generator_counts_refusals_by_code(datadir):
    # 5 frames a second per session, burst 5: sending 20 a second, most sends are refused
    # (`rate_limited`, with their clientMsgId as `ref`); the rest are acked and delivered.
    server = Server(datadir + "/data", "--login-rate-limit", "off", "--register-rate-limit", "off", "--session-rate-limit", "5:5")
    try:
        report = run_load(server, "--rate", "400")
        refused = report["refused"].get("rate_limited", 0)
        assert refused > 0, report
        assert set(report["refused"]) == {"rate_limited"}
        assert report["acked"] > 0 and report["acked"] + refused == report["sent"], report
        assert report["unacked"] == 0 and report["delivered"] == report["acked"]
        assert report["lost"] == 0 and report["duplicates"] == 0 and report["outOfOrder"] == 0
    finally:
        server.stop()
