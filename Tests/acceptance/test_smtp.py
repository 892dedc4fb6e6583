"""Re-engagement email over a real SMTP conversation: Python's aiosmtpd on 127.0.0.1 as
the mail server, the real `chorus` binary with --smtp and a short --inactivity-after. The server
answers 451 for a while then recovers (exactly one delivery), is down for a while (delivery once it
is back), and refuses a recipient for good (550: not retried)."""
import email
import email.policy
import socket
import threading
import time

from aiosmtpd.controller import Controller

from conftest import Server
from test_cluster import free_ports


class Recorder:
    """An aiosmtpd handler: records what it accepts; answers `script` codes first (one per DATA)."""

    def __init__(self, script=(), refuse=()):
        self.script = list(script)
        self.refuse = set(refuse)
        self.accepted = []
        self.attempts = 0
        self.tls = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.attempts += 1
            if self.script:
                return self.script.pop(0)
            self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            self.tls.append(bool(session.ssl))
        return "250 OK queued"

    def messages(self):
        with self.lock:
            return [email.message_from_bytes(c, policy=email.policy.default) for _, _, c in self.accepted]


def wait_until(predicate, seconds=30, what="condition"):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_451_for_a_while_then_exactly_one_delivery_and_550_is_not_retried(datadir):
    recorder = Recorder(script=["451 4.3.0 try again later", "451 4.3.0 try again later"], refuse={"bob@example.com"})
    port = free_ports(1)[0]
    smtp = Controller(recorder, hostname="127.0.0.1", port=port)
    smtp.start()
    server = Server(datadir + "/data", "--inactivity-after", "2s", "--smtp", f"127.0.0.1:{port}", "--mail-from", "chorus@chat.example")
    try:
        ann = server.user("ann")
        server.user("bob")  # his address is refused for good
        wait_until(lambda: len(recorder.accepted) >= 1, what="ann's email")
        mail_from, rcpts, _ = recorder.accepted[0]
        assert mail_from == "chorus@chat.example" and rcpts == ["ann@example.com"]
        m = recorder.messages()[0]
        assert m["Message-ID"].startswith(f"<reengage.{ann['id']}.") and m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert {p.get_content_type() for p in m.iter_parts()} == {"text/plain", "text/html"}
        assert recorder.attempts == 3, "two 451s, then the one delivery"

        wait_until(lambda: server.counter("chorus_email_failed_total") == 1, what="bob's refusal")
        carl = server.user("carl")  # a control: once carl has his, bob was long due
        wait_until(lambda: any(r == ["carl@example.com"] for _, r, _ in recorder.accepted), what="carl's email")
        assert [r for _, r, _ in recorder.accepted].count(["ann@example.com"]) == 1
        assert not any(r == ["bob@example.com"] for _, r, _ in recorder.accepted), "refused: never retried"
        assert carl
    finally:
        server.stop()
        smtp.stop()


def test_a_mail_server_down_for_a_while_gets_the_email_when_it_returns(datadir):
    port = free_ports(1)[0]
    server = Server(datadir + "/data", "--inactivity-after", "1s", "--smtp", f"127.0.0.1:{port}")
    recorder = Recorder()
    smtp = None
    try:
        ann = server.user("ann")
        # Nothing listens: connections are refused and the email stays pending, retried.
        wait_until(lambda: server.counter("chorus_email_retried_total") >= 2, what="retries while the server is down")
        smtp = Controller(recorder, hostname="127.0.0.1", port=port)
        smtp.start()
        wait_until(lambda: len(recorder.accepted) == 1, seconds=60, what="delivery after the server came back")
        assert recorder.messages()[0]["Message-ID"].startswith(f"<reengage.{ann['id']}.")
        # Killed once its record is durable (the counter moves after the fsync), and restarted: the
        # sent email is not sent again. (A kill between the mail server's 250 and that fsync would
        # resend it, with the same Message-ID: SMTP cannot give exactly-once, docs/EMAIL.md.)
        wait_until(lambda: server.counter("chorus_email_sent_total") == 1, what="ann's email recorded as sent")
        server.kill()
        server = Server(datadir + "/data", "--inactivity-after", "1s", "--smtp", f"127.0.0.1:{port}")
        bea = server.user("bea")
        wait_until(lambda: len(recorder.accepted) == 2, what="bea's email after the restart")
        assert [r for _, r, _ in recorder.accepted] == [["ann@example.com"], ["bea@example.com"]]
        assert bea
    finally:
        server.stop()
        if smtp:
            smtp.stop()


def test_starttls_with_a_verified_certificate_and_none_without_trust(datadir):
    import ssl
    import subprocess
    cert, key = datadir + "/cert.pem", datadir + "/key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = Recorder()
    port = free_ports(1)[0]
    smtp = Controller(recorder, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)
    smtp.start()
    trusted = Server(datadir + "/a", "--inactivity-after", "1s", "--smtp", f"127.0.0.1:{port}", "--smtp-tls", "required", "--smtp-ca-file", cert)
    untrusted = Server(datadir + "/b", "--inactivity-after", "1s", "--smtp", f"127.0.0.1:{port}", "--smtp-tls", "required")
    try:
        ann = trusted.user("ann")
        untrusted.user("bob")
        wait_until(lambda: len(recorder.accepted) >= 1, what="ann's email over TLS")
        assert recorder.tls == [True] and recorder.accepted[0][1] == ["ann@example.com"]
        assert ann

        wait_until(lambda: untrusted.counter("chorus_email_retried_total") >= 1, what="the untrusted certificate refused and the email kept for a retry")
        assert all(r == ["ann@example.com"] for _, r, _ in recorder.accepted), "nothing sent over an unverified connection"
    finally:
        trusted.stop()
        untrusted.stop()
        smtp.stop()


def test_smtp_credentials_are_never_sent_without_tls(datadir, monkeypatch):
    """PROTOCOL.md section 6, "Email": with --smtp-user, AUTH goes only over TLS. A server that
    offers AUTH but no STARTTLS never sees the credentials (with --smtp-tls opportunistic as with
    the default, required); nothing is delivered and the email is retried."""
    from aiosmtpd.smtp import AuthResult
    attempts = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        attempts.append(mechanism)
        return AuthResult(success=True)

    recorder = Recorder()
    port = free_ports(1)[0]
    smtp = Controller(recorder, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False)
    smtp.start()
    monkeypatch.setenv("CHORUS_SMTP_PASSWORD", "s3cret-password")
    try:
        for tls in (["--smtp-tls", "opportunistic"], []):
            server = Server(f"{datadir}/data{len(tls)}", "--inactivity-after", "1s", "--smtp", f"127.0.0.1:{port}",
                            "--smtp-user", "chorus", *tls)
            try:
                server.user("ann")
                wait_until(lambda: server.counter("chorus_email_retried_total") >= 2, what="retries without TLS")
                assert attempts == [] and recorder.accepted == []
            finally:
                server.stop()
    finally:
        smtp.stop()


def test_smtp_user_with_tls_off_exits_2(datadir):
    import subprocess
    from conftest import chorus_binary
    p = subprocess.run([chorus_binary(), "serve", "--data", datadir + "/d", "--smtp", "127.0.0.1:2525", "--smtp-user", "u",
                        "--smtp-tls", "off"], capture_output=True, timeout=30)
    assert p.returncode == 2 and "--smtp-user" in p.stderr.decode(), p.stderr.decode()
