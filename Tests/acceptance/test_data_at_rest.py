"""PROTOCOL.md section 6, data at rest, against the real binary: every file the node creates under
--data is 0600 and every directory 0700 (log segments, snapshots, the email secret and outbox, the
membership file), and a data directory left open to others is made private at start, with a warning."""
import os
import stat
import time

from conftest import Server


def loose(root):
    """Paths under `root` (itself included) that group or others may use."""
    found = []
    for path in [root] + [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files]:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if mode & 0o077:
            found.append((path, oct(mode)))
    return found


def test_the_node_keeps_its_data_private(datadir):
    data = datadir + "/data"
    server = Server(data, "--inactivity-after", "1s", "--snapshot-every", "1")
    try:
        ann, bob = server.user("ann"), server.user("bob")
        status, conversation = server.http("POST", "/v1/conversations", {"members": [bob["id"]]}, token=ann["token"])
        assert status == 201
        assert server.http("POST", f"/v1/conversations/{conversation['conversationId']}/messages",
                           {"clientMsgId": "m1", "body": "hello"}, token=ann["token"])[0] == 201
        deadline = time.monotonic() + 20
        while not os.path.isdir(os.path.join(data, "outbox")) or not os.listdir(os.path.join(data, "outbox")):
            assert time.monotonic() < deadline, "no re-engagement email written"
            time.sleep(0.1)
    finally:
        assert server.stop() == 0
    names = {n for _, _, files in os.walk(data) for n in files}
    assert any(n.endswith(".eml") for n in names) and any(n.startswith("snapshot") or "snap" in n for n in names), names
    assert loose(data) == []


def test_a_data_directory_open_to_others_is_made_private_at_start(datadir):
    data = datadir + "/data"
    os.makedirs(data)
    os.chmod(data, 0o755)
    server = Server(data)
    try:
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        with open(data + ".stderr.log") as f:
            assert any("made private" in line and "755" in line for line in f)
    finally:
        server.stop()
