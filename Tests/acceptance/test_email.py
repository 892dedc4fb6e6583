"""Re-engagement email end to end (PROTOCOL.md section 4) with the real binary, a short
--inactivity-after and the embedded default (no --smtp: each email is an .eml file under the data
directory): the email's headers and parts, one per period, GET changes nothing, one-click POST
unsubscribes for good, and a SIGKILL and restart sends nothing twice."""
import email
import email.policy
import glob
import os
import time
import urllib.error
import urllib.request

from conftest import Server


def emails(data, user_id=None):
    found = []
    for path in sorted(glob.glob(os.path.join(data, "outbox", "*.eml"))):
        with open(path, "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        if user_id is None or f"reengage.{user_id}." in m["Message-ID"]:
            found.append(m)
    return found


def wait_for_email(data, user_id, count, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        got = emails(data, user_id)
        if len(got) >= count:
            return got
        assert time.monotonic() < deadline, f"{user_id} never got email {count}"
        time.sleep(0.1)


def request(url, method="GET"):
    req = urllib.request.Request(url, method=method, data=b"List-Unsubscribe=One-Click" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def test_one_email_per_period_one_click_unsubscribe_and_no_repeat_after_a_crash(datadir):
    data = datadir + "/data"
    server = Server(data, "--inactivity-after", "2s", "--mail-from", "chorus@chat.example")
    try:
        ann = server.user("ann")  # registering counts as a login: due 2 s later
        [first] = wait_for_email(data, ann["id"], 1)
        assert first["From"] == "chorus@chat.example" and first["To"] == "ann@example.com"
        assert first["Subject"] == "ann, your conversations are waiting"
        assert first["Date"] and first["Message-ID"].startswith(f"<reengage.{ann['id']}.")
        assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = first["List-Unsubscribe"].strip("<>")
        assert unsubscribe.startswith(f"http://{server.base}/v1/unsubscribe?token={ann['id']}.")
        assert first.get_content_type() == "multipart/alternative"
        parts = {p.get_content_type(): p.get_content() for p in first.iter_parts()}
        assert set(parts) == {"text/plain", "text/html"}
        assert unsubscribe in parts["text/plain"] and f"http://{server.base}/" in parts["text/plain"]
        assert "Unsubscribe" in parts["text/html"] and "<p>Hello ann,</p>" in parts["text/html"]

        # GET shows a page with a button and changes nothing: a new period gets a new email.
        status, page, headers = request(unsubscribe)
        assert status == 200 and 'method="post"' in page and "default-src 'none'" in headers["Content-Security-Policy"]
        assert server.http("POST", "/v1/sessions", {"username": "ann", "password": "password1"})[0] == 201
        second = wait_for_email(data, ann["id"], 2)
        assert len({m["Message-ID"] for m in second}) == 2, "a new period, a new Message-ID"

        # A forged token is refused; POST (one-click) unsubscribes, twice is fine.
        assert request(unsubscribe + "x", "POST")[0] == 400
        assert request(unsubscribe.replace(ann["id"], "u_aaaaaaaaaaaaa"), "POST")[0] == 400
        assert request(unsubscribe, "POST")[0] == 200
        assert request(unsubscribe, "POST")[0] == 200
        assert server.http("POST", "/v1/sessions", {"username": "ann", "password": "password1"})[0] == 201
        carl = server.user("carl")  # a control: once carl has his email, ann's deadline has passed too
        wait_for_email(data, carl["id"], 1)
        assert len(emails(data, ann["id"])) == 2, "none after unsubscribing"

        # SIGKILL and restart: the outbox comes back from the log; nothing is sent twice.
        server.kill()
        server = Server(data, "--inactivity-after", "2s", "--mail-from", "chorus@chat.example")
        dave = server.user("dave")
        wait_for_email(data, dave["id"], 1)
        assert len(emails(data, ann["id"])) == 2 and len(emails(data, carl["id"])) == 1
        text = urllib.request.urlopen(f"http://{server.base}/metrics", timeout=10).read().decode()
        assert "chorus_email_sent_total" in text and "chorus_email_outbox_depth 0" in text
    finally:
        server.stop()


def test_an_operator_replaces_the_wording_and_bad_options_exit_2(datadir):
    import subprocess
    from conftest import chorus_binary
    templates = os.path.join(datadir, "templates")
    os.makedirs(templates)
    with open(os.path.join(templates, "subject.txt"), "w") as f:
        f.write("We miss you, {{name}}\n")
    with open(os.path.join(templates, "body.html"), "w") as f:
        f.write("<p>{{name}}</p><a href=\"{{unsubscribeURL}}\">stop</a>")
    data = datadir + "/data"
    server = Server(data, "--inactivity-after", "1s", "--email-templates", templates)
    try:
        status, zoe = server.http("POST", "/v1/users", {"username": "zoe", "password": "password1", "email": "zoe@example.com", "displayName": "Zoë <b>"})
        assert status == 201
        [m] = wait_for_email(data, zoe["userId"], 1)
        assert m["Subject"] == "We miss you, Zoë <b>", "an encoded word, decoded"
        html = next(p.get_content() for p in m.iter_parts() if p.get_content_type() == "text/html")
        assert html.startswith("<p>Zoë &lt;b&gt;</p>"), "values are escaped in HTML"
    finally:
        server.stop()
    broken = os.path.join(datadir, "broken")
    os.makedirs(broken)
    with open(os.path.join(broken, "body.txt"), "w") as f:
        f.write("Hello {{#name}}, this section is never closed")
    for args, says in [(["--email-rate", "0"], "--email-rate"), (["--email-templates", datadir + "/none"], "--email-templates"),
                       (["--email-templates", broken], "text template does not parse"),
                       (["--smtp-connections", "0"], "--smtp-connections")]:
        p = subprocess.run([chorus_binary(), "serve", "--data", datadir + "/d", *args], capture_output=True, timeout=30)
        assert p.returncode == 2 and says in p.stderr.decode(), p.stderr.decode()


def test_email_state_comes_back_from_a_snapshot(datadir):
    """The outbox is a section of the node's snapshot: after a clean stop that snapshots everything,
    the restart replays nothing and still knows the email it sent (no second one for the period)."""
    data = datadir + "/data"
    args = ("--inactivity-after", "2s", "--snapshot-every", "1")
    server = Server(data, *args)
    try:
        ann = server.user("ann")
        wait_for_email(data, ann["id"], 1)
        deadline = time.monotonic() + 10
        while server.counter("chorus_email_sent_total") < 1:  # emailSent is logged (fsynced) first
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        assert server.stop() == 0
    server = Server(data, *args)
    try:
        with open(data + ".stderr.log") as f:
            recovered = [line for line in f if "recovered" in line][-1]
        assert "records=0" in recovered and "snapshotLSN=0" not in recovered, recovered
        dave = server.user("dave")  # a control: ann, overdue since before the stop, would go first
        wait_for_email(data, dave["id"], 1)
        deadline = time.monotonic() + 10
        while server.counter("chorus_email_sent_total") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # A resend keeps its Message-ID (and its file name), so count what this process sent.
        assert server.counter("chorus_email_sent_total") == 1, "the outbox came back from the snapshot: only dave's"
    finally:
        server.stop()
